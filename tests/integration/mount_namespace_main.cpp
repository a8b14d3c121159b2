// tests/integration/mount_namespace_main.cpp — the main of fs_fault_tests:
// the whole test binary moves into a mount namespace of its own (unshare(2)
// CLONE_NEWNS, every mount made private), so the file systems its tests mount
// and make read-only (tmpfs, mount(2)) are seen by it and the daemons it
// starts, never by the rest of the machine, and vanish with it. Where that is
// not allowed (not root, no CAP_SYS_ADMIN, a container that forbids it), it
// prints why and exits 77: ctest reports the test skipped (SKIP_RETURN_CODE).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <sched.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "tests/integration/harness.hpp"

namespace {

// Empty if the process now has private mounts and may mount a tmpfs and make
// it read-only; else why not.
std::string private_mounts() {
    if (::unshare(CLONE_NEWNS) != 0) return std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno);
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        return std::string("making / private: ") + std::strerror(errno);
    peershare::test::TempDir probe;
    if (::mount("tmpfs", probe.path().c_str(), "tmpfs", 0, "size=64k") != 0)
        return std::string("mounting a tmpfs: ") + std::strerror(errno);
    const bool ro = ::mount(nullptr, probe.path().c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) == 0;
    const int err = errno;
    ::umount2(probe.path().c_str(), MNT_DETACH);
    if (!ro) return std::string("remounting a tmpfs read-only: ") + std::strerror(err);
    return {};
}

}  // namespace

int main(int argc, char** argv) {
    peershare::test::install_crash_cleanup();
    if (const auto why = private_mounts(); !why.empty()) {
        std::cout << "SKIPPED: the file-system fault tests need a mount namespace of their own (root): " << why
                  << "\n";
        return 77;
    }
    doctest::Context context(argc, argv);
    return context.run();
}
