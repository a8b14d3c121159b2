// tests/integration/test_main.cpp — the main of the integration test binaries:
// the harness's crash cleanup first (doctest's own signal handlers chain to
// it), so a dying test binary takes the daemons it started with it.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "tests/integration/harness.hpp"

int main(int argc, char** argv) {
    peershare::test::install_crash_cleanup();
    doctest::Context context(argc, argv);
    return context.run();
}
