// medvaultctl's commands for the keyvault: hsm info|init, keys list|rotate.
// Each returns the process exit code: 0 success, 1 refused or failed,
// 2 bad usage or configuration.
#ifndef MEDVAULT_DAEMON_CTL_KEYVAULT_COMMANDS_H_
#define MEDVAULT_DAEMON_CTL_KEYVAULT_COMMANDS_H_

#include "daemon/ctl/rpc.h"
#include "medvault/config/v1/config.pb.h"

namespace medvault::ctl {

int HsmInfo(const config::v1::Config& config);
// Development: with `create_token`, first creates the SoftHSM2 token the
// configuration names (with softhsm2-util) unless it exists. Then asks the
// running keyvault to create whichever of the deployment's keys are missing.
int HsmInit(const config::v1::Config& config, bool create_token);
int KeysList(const config::v1::Config& config);
int KeysRotate(const config::v1::Config& config);

}  // namespace medvault::ctl

#endif  // MEDVAULT_DAEMON_CTL_KEYVAULT_COMMANDS_H_
