# Small helpers so every component is declared the same way.

# medvault_cc_library(NAME name SRCS ... [DEPS ...] [PUBLIC_DEPS ...])
# Defines a static library medvault_<name> with the alias medvault::<name>.
function(medvault_cc_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS;PUBLIC_DEPS" ${ARGN})
  add_library(medvault_${ARG_NAME} STATIC ${ARG_SRCS})
  add_library(medvault::${ARG_NAME} ALIAS medvault_${ARG_NAME})
  target_include_directories(medvault_${ARG_NAME} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(medvault_${ARG_NAME} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_DEPS})
endfunction()

# medvault_cc_binary(NAME name SRCS ... [DEPS ...])
function(medvault_cc_binary)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
  set_target_properties(${ARG_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
endfunction()

# medvault_cc_test(NAME name SRCS ... [DEPS ...] [LABELS ...])
# A GoogleTest binary registered with CTest; each TEST is its own CTest case
# so that ctest -j runs them in parallel.
function(medvault_cc_test)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  set_target_properties(${ARG_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests)
  # gtest_discover_tests passes only the first element of a list-valued
  # property on, so each variable goes in a property of its own.
  gtest_discover_tests(${ARG_NAME}
    PROPERTIES LABELS "${ARG_LABELS}"
               ENVIRONMENT "MEDVAULT_BIN_DIR=${PROJECT_BINARY_DIR}/bin"
               ENVIRONMENT_MODIFICATION "MEDVAULT_SOURCE_DIR=set:${PROJECT_SOURCE_DIR}"
    DISCOVERY_TIMEOUT 30)
endfunction()
