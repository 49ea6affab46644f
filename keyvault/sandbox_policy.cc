// The seccomp allowlist of medvault-keyvault, in one place.
#include "keyvault/sandbox_policy.h"

namespace medvault::keyvault {

SyscallPolicy KeyvaultPolicy() {
  return SyscallPolicy::GrpcService()
      // The PKCS#11 module keeps its token on disk (SoftHSM2: one file per
      // object, re-read when another session changed it, locked while
      // written) and may create and remove object files.
      .Allow({"flock", "fsync", "fdatasync", "ftruncate", "getdents64", "unlink", "rename", "mkdir",
              "umask", "statfs", "fstatfs"},
             "the PKCS#11 module reads, locks and rewrites its token files")
      // The patient store is SQLite in WAL mode: positioned reads and
      // writes of pages, its shared-memory index mapped from a file, syncs,
      // and existence checks of its -wal and -shm files. The database-key
      // files are checked for existence before they are created.
      .Allow({"pread64", "pwrite64", "access", "fchmod"},
             "SQLite reads and writes its pages; key files are checked before creation");
}

}  // namespace medvault::keyvault
