// Status propagation helpers, used everywhere inside medvault.
//
// Inside the processes errors travel as absl::Status / absl::StatusOr<T>;
// they become grpc::Status only at a service edge (see grpc_status.h).
#ifndef MEDVAULT_DAEMON_COMMON_STATUS_MACROS_H_
#define MEDVAULT_DAEMON_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define MEDVAULT_CONCAT_INNER_(a, b) a##b
#define MEDVAULT_CONCAT_(a, b) MEDVAULT_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` is not OK.
#define RETURN_IF_ERROR(expr)                           \
  do {                                                  \
    if (absl::Status _status = (expr); !_status.ok()) { \
      return _status;                                   \
    }                                                   \
  } while (0)

// ASSIGN_OR_RETURN(lhs, expr): evaluates `expr` (an absl::StatusOr<T>),
// returns its status if not OK, else moves its value into `lhs`, which may
// be a declaration ("auto x").
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(MEDVAULT_CONCAT_(_status_or_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr)   \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return std::move(tmp).status(); \
  lhs = std::move(tmp).value()

#endif  // MEDVAULT_DAEMON_COMMON_STATUS_MACROS_H_
