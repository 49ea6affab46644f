// An endpoint URL as it may appear in messages and logs. Hosted Ethereum
// and IPFS endpoints carry credentials in the URL itself (user:password@,
// an API key in the path, a token in the query), so only the scheme, host
// and port are shown: "https://mainnet.example.net/v3/KEY" becomes
// "https://mainnet.example.net".
#ifndef MEDVAULT_DAEMON_COMMON_URL_H_
#define MEDVAULT_DAEMON_COMMON_URL_H_

#include <string>

#include "absl/strings/string_view.h"

namespace medvault {

// scheme://host[:port] of `url`; "(unparsable URL)" when there is no
// "scheme://" (the input is never echoed then).
std::string EndpointForLogs(absl::string_view url);

}  // namespace medvault

#endif  // MEDVAULT_DAEMON_COMMON_URL_H_
