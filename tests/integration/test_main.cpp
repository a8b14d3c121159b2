// tests/integration/test_main.cpp — the main of the integration test binaries:
// the harness's crash cleanup first (doctest's own signal handlers chain to
// it), so a dying test binary takes the daemons it started with it. SIGPIPE
// is ignored: a test that writes to a daemon closing on it (the point of many
// fault tests) gets EPIPE from the write, not its whole binary killed — as
// `fault_injection` was once under TSan's timing. Children start with the
// default disposition (harness.cpp, SpawnSetup).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <csignal>

#include "tests/integration/harness.hpp"

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    peershare::test::install_crash_cleanup();
    doctest::Context context(argc, argv);
    return context.run();
}
