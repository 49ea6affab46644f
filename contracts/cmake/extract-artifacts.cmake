# Extracts the ABI and bytecode of each contract from forge's artifacts.
#
#   cmake -DFORGE_OUT=<forge --out dir> -DDEST=<dir> -DCONTRACTS=A,B,C -P extract-artifacts.cmake
#
# For each contract C (compiled from src/C.sol) it writes into DEST:
#   C.abi.json     the ABI (JSON array)
#   C.bin          creation bytecode, lowercase hex without 0x or newline
#   C.runtime.bin  deployed (runtime) bytecode, same format
cmake_minimum_required(VERSION 3.25)

foreach(var FORGE_OUT DEST CONTRACTS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "extract-artifacts.cmake: ${var} is not set")
  endif()
endforeach()

string(REPLACE "," ";" CONTRACTS "${CONTRACTS}")
file(MAKE_DIRECTORY "${DEST}")
foreach(contract IN LISTS CONTRACTS)
  set(artifact "${FORGE_OUT}/${contract}.sol/${contract}.json")
  if(NOT EXISTS "${artifact}")
    message(FATAL_ERROR "extract-artifacts.cmake: forge produced no ${artifact}")
  endif()
  file(READ "${artifact}" json)
  string(JSON abi GET "${json}" abi)
  string(JSON creation GET "${json}" bytecode object)
  string(JSON runtime GET "${json}" deployedBytecode object)
  foreach(code creation runtime)
    string(REGEX REPLACE "^0x" "" ${code} "${${code}}")
    if(NOT ${code} MATCHES "^[0-9a-f]+$")
      # Empty for an abstract contract or an interface; unlinked libraries
      # leave placeholders. Neither belongs in the build outputs.
      message(FATAL_ERROR "extract-artifacts.cmake: ${contract}: ${code} bytecode is not plain hex")
    endif()
  endforeach()
  file(WRITE "${DEST}/${contract}.abi.json" "${abi}\n")
  file(WRITE "${DEST}/${contract}.bin" "${creation}")
  file(WRITE "${DEST}/${contract}.runtime.bin" "${runtime}")
endforeach()
