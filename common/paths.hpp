// common/paths.hpp — default locations shared by peerd and peerctl
// (docs/design.md, "Command line and configuration").
#pragma once

#include <string>

namespace peershare::common {

// $PEERD_SOCKET, else $XDG_RUNTIME_DIR/peerd.sock, else /tmp/peerd-UID.sock.
std::string default_peerd_socket();
// $XDG_STATE_HOME/peerd, else ~/.local/state/peerd.
std::string default_state_dir();
// $XDG_CONFIG_HOME/peershare/peerd.conf, else ~/.config/peershare/peerd.conf.
std::string default_peerd_config();
// The machine's host name, made a valid peer name.
std::string host_name();

}  // namespace peershare::common
