// tests/unit/test_catalog.cpp — the publications index: by name, and by
// content id for the upload server (several names may share one content).
#include <doctest/doctest.h>

#include <algorithm>

#include "daemon/catalog.hpp"

using namespace peershare::peerd;

namespace {

Publication pub(std::string name, std::string path, std::string id) {
    Publication p;
    p.name = std::move(name);
    p.path = std::move(path);
    p.id = std::move(id);
    return p;
}

}  // namespace

TEST_CASE("catalog: by_id finds a publication of that content that has not changed") {
    Catalog c;
    c.put(pub("a", "/f/a", "11"));
    c.put(pub("b", "/f/b", "11"));   // same content under another name
    c.put(pub("c", "/f/c", "22"));
    REQUIRE(c.by_id("11") != nullptr);
    CHECK(c.by_id("22")->name == "c");
    CHECK(c.by_id("33") == nullptr);

    c.mark_changed("/f/a");
    REQUIRE(c.by_id("11") != nullptr);
    CHECK(c.by_id("11")->name == "b");   // the one still as hashed

    c.remove("b");
    CHECK(c.by_id("11") == nullptr);   // only the changed one is left

    SUBCASE("publishing a name again replaces its content id") {
        c.put(pub("c", "/f/c", "33"));
        CHECK(c.by_id("22") == nullptr);
        REQUIRE(c.by_id("33") != nullptr);
        CHECK(c.by_name("c")->id == "33");
    }
    SUBCASE("removing the last name of a content forgets the content") {
        CHECK(c.remove("c"));
        CHECK(c.by_id("22") == nullptr);
        CHECK_FALSE(c.remove("c"));
    }
}

TEST_CASE("catalog: names_of_path finds every name of a path, and forgets removed and replaced ones") {
    Catalog c;
    c.put(pub("a", "/f/x", "11"));
    c.put(pub("b", "/f/x", "11"));
    c.put(pub("c", "/f/y", "22"));
    auto names = c.names_of_path("/f/x");
    std::sort(names.begin(), names.end());
    CHECK(names == std::vector<std::string>{"a", "b"});
    c.remove("a");
    CHECK(c.names_of_path("/f/x") == std::vector<std::string>{"b"});
    c.put(pub("b", "/f/z", "33"));   // published again from another path
    CHECK(c.names_of_path("/f/x").empty());
    CHECK(c.names_of_path("/f/z") == std::vector<std::string>{"b"});
    c.mark_changed("/f/y");
    CHECK(c.by_name("c")->changed);
    CHECK_FALSE(c.by_name("b")->changed);
}
