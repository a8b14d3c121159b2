// tests/unit/test_transfers.cpp — the pure parts of peerd's transfers
// (daemon/transfers/): which holders a fetch may use, the waiting backoff,
// partial-file names and leftovers; and the transfer control messages.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "daemon/transfers/holder_choice.hpp"
#include "daemon/transfers/leftovers.hpp"
#include "proto/transfers.hpp"

using namespace peershare;
using peershare::peerd::choose_holders;
namespace fs = std::filesystem;

namespace {

proto::Holder holder(std::string peer, std::string id) {
    return {std::move(peer), "127.0.0.1", 7000, 100, std::move(id), 262144, 0};
}

const std::string kA(64, 'a'), kB(64, 'b');

struct ScratchDir {
    ScratchDir() {
        char tmpl[] = "/tmp/peershare-unit-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~ScratchDir() { fs::remove_all(path); }
    fs::path path;
};

void touch(const fs::path& p, std::size_t bytes) {
    std::ofstream out(p, std::ios::binary);
    out << std::string(bytes, 'x');
}

}  // namespace

TEST_CASE("holders: self, --from, --id and the chosen content filter; several contents are choices") {
    const std::vector<proto::Holder> all{holder("me", kA), holder("h1", kA), holder("h2", kB)};
    auto choices = choose_holders("f", all, {"me", "", "", ""});
    REQUIRE(std::holds_alternative<proto::Choices>(choices));
    CHECK(std::get<proto::Choices>(choices).holders.size() == 2);

    auto one = choose_holders("f", all, {"me", "", "bb", ""});
    REQUIRE(std::holds_alternative<std::vector<proto::Holder>>(one));
    CHECK(std::get<0>(one).front().peer == "h2");

    auto from = choose_holders("f", all, {"me", "h1", "", ""});
    REQUIRE(std::holds_alternative<std::vector<proto::Holder>>(from));
    CHECK(std::get<0>(from).size() == 1);

    auto content = choose_holders("f", all, {"me", "", "", kB});
    REQUIRE(std::holds_alternative<std::vector<proto::Holder>>(content));
    CHECK(std::get<0>(content).front().id == kB);

    auto nobody = choose_holders("f", all, {"me", "h9", "", ""});
    REQUIRE(std::holds_alternative<proto::Error>(nobody));
    CHECK(std::get<proto::Error>(nobody).code == proto::ErrorCode::not_found);
    CHECK(std::get<proto::Error>(nobody).message.find("from h9") != std::string::npos);

    auto only_self = choose_holders("f", {holder("me", kA)}, {"me", "", "", ""});
    REQUIRE(std::holds_alternative<proto::Error>(only_self));
    CHECK(std::get<proto::Error>(only_self).message.find("only by this peer") != std::string::npos);
}

TEST_CASE("holders the tracker found unreachable: all of them fail at once, saying who and what would fix it") {
    auto hidden = [](std::string peer, std::optional<bool> reachable) {
        auto h = holder(std::move(peer), kA);
        h.reachable = reachable;
        return h;
    };
    SUBCASE("the only holder") {
        auto r = choose_holders("f", {hidden("h1", false)}, {"me", "", "", ""});
        REQUIRE(std::holds_alternative<proto::Error>(r));
        const auto& e = std::get<proto::Error>(r);
        CHECK(e.code == proto::ErrorCode::unavailable);
        CHECK(e.message.find("the only holder of 'f' is unreachable (h1 at 127.0.0.1:7000)") == 0);
        CHECK(e.message.find("--advertise") != std::string::npos);
        CHECK(e.message.find("port forwarding") != std::string::npos);
        CHECK(e.message.find('\n') == std::string::npos);   // one line
    }
    SUBCASE("several: the first three named, the rest counted") {
        std::vector<proto::Holder> all;
        for (int i = 0; i < 5; ++i) all.push_back(hidden("h" + std::to_string(i), false));
        auto r = choose_holders("f", all, {"me", "", "", ""});
        REQUIRE(std::holds_alternative<proto::Error>(r));
        CHECK(std::get<proto::Error>(r).message.find("every holder of 'f' is unreachable (h0 at 127.0.0.1:7000, h1 at "
                                                     "127.0.0.1:7000, h2 at 127.0.0.1:7000 and 2 more)") == 0);
    }
    SUBCASE("one reachable, or one not yet checked, is the only direct source: the unreachable one is set apart") {
        for (const std::optional<bool> other : {std::optional<bool>(true), std::optional<bool>()}) {
            const std::vector<proto::Holder> all{hidden("h1", false), hidden("h2", other), hidden("h3", false)};
            auto r = choose_holders("f", all, {"me", "", "", ""});
            REQUIRE(std::holds_alternative<std::vector<proto::Holder>>(r));
            REQUIRE(std::get<0>(r).size() == 1);
            CHECK(std::get<0>(r).front().peer == "h2");
            const auto apart = peershare::peerd::unreachable_holders(all, {"me", "", "", ""});
            REQUIRE(apart.size() == 2);
            CHECK(apart[0].peer == "h1");
            CHECK(apart[1].peer == "h3");
            CHECK(peershare::peerd::unreachable_holders(all, {"me", "h2", "", ""}).empty());
        }
    }
    SUBCASE("reachable and not yet checked holders are all direct sources, as before") {
        auto r = choose_holders("f", {hidden("h1", true), hidden("h2", std::nullopt)}, {"me", "", "", ""});
        REQUIRE(std::holds_alternative<std::vector<proto::Holder>>(r));
        CHECK(std::get<0>(r).size() == 2);
    }
    SUBCASE("--from a reachable holder while the others are not") {
        auto r = choose_holders("f", {hidden("h1", false), hidden("h2", true)}, {"me", "h2", "", ""});
        REQUIRE(std::holds_alternative<std::vector<proto::Holder>>(r));
    }
}

TEST_CASE("hidden holders: reverse when we are reachable, relay when we are not and one is wired, else a clear error") {
    using peerd::HiddenRoute;
    using peerd::hidden_route;
    using peerd::OwnReach;
    CHECK(hidden_route(OwnReach{true, "answered", false}) == HiddenRoute::reverse);
    CHECK(hidden_route(OwnReach{true, "answered", true}) == HiddenRoute::reverse);   // a relay only when needed
    CHECK(hidden_route(OwnReach{false, "refused", true}) == HiddenRoute::relay);
    CHECK(hidden_route(OwnReach{std::nullopt, "checking", true}) == HiddenRoute::relay);
    CHECK(hidden_route(OwnReach{false, "refused", false}) == HiddenRoute::none);
    CHECK(hidden_route(OwnReach{std::nullopt, "checking", false}) == HiddenRoute::none);
    CHECK(peerd::to_string(HiddenRoute::reverse) == "reverse");

    auto h1 = holder("h1", kA);
    h1.reachable = false;
    auto h2 = holder("h2", kA);
    h2.reachable = true;
    SUBCASE("a route: the hidden holders are kept, beside the reachable ones, and none hidden is no error") {
        for (const auto& own : {OwnReach{true, "answered at 127.0.0.1:1", false}, OwnReach{false, "refused", true}}) {
            auto only = choose_holders("f", {h1}, {"me", "", "", ""}, own);
            REQUIRE(std::holds_alternative<std::vector<proto::Holder>>(only));
            CHECK(std::get<0>(only).front().reachable == false);
            auto both = choose_holders("f", {h1, h2}, {"me", "", "", ""}, own);
            REQUIRE(std::holds_alternative<std::vector<proto::Holder>>(both));
            CHECK(std::get<0>(both).size() == 2);
        }
    }
    SUBCASE("no route: the hidden ones are left out, and all hidden fails saying which sides and the fixes") {
        const OwnReach own{false, "connection refused at 127.0.0.3:5000", false};
        auto both = choose_holders("f", {h1, h2}, {"me", "", "", ""}, own);
        REQUIRE(std::holds_alternative<std::vector<proto::Holder>>(both));
        REQUIRE(std::get<0>(both).size() == 1);
        CHECK(std::get<0>(both).front().peer == "h2");
        auto r = choose_holders("f", {h1}, {"me", "", "", ""}, own);
        REQUIRE(std::holds_alternative<proto::Error>(r));
        const auto& e = std::get<proto::Error>(r);
        CHECK(e.code == proto::ErrorCode::unavailable);
        CHECK(e.message == peerd::no_route_message("f", {h1}, own));
        CHECK(e.message.find("the only holder of 'f' is unreachable (h1 at 127.0.0.1:7000)") == 0);
        CHECK(e.message.find("this peer is unreachable too (connection refused at 127.0.0.3:5000)") !=
              std::string::npos);
        for (const char* fix : {"port forwarding", "--advertise", "trackerd --relay-listen"}) {
            CAPTURE(fix);
            CHECK(e.message.find(fix) != std::string::npos);
        }
        CHECK(e.message.find('\n') == std::string::npos);
        const auto unknown = peerd::no_route_message("f", {h1}, OwnReach{std::nullopt, "checking", false});
        CHECK(unknown.find("this peer's own reachability is not known (checking)") != std::string::npos);
    }
}

TEST_CASE("a failed direct connect: reverse when we are reachable, relay when we are not and one is wired, else none") {
    using peerd::fallback_route;
    using peerd::HiddenRoute;
    using peerd::OwnReach;
    CHECK(fallback_route(OwnReach{true, "answered", false}) == HiddenRoute::reverse);
    CHECK(fallback_route(OwnReach{true, "answered", true}) == HiddenRoute::reverse);
    CHECK(fallback_route(OwnReach{false, "refused", true}) == HiddenRoute::relay);
    CHECK(fallback_route(OwnReach{false, "refused", false}) == HiddenRoute::none);
    // Unknown: a tracker with --no-reach-check (nothing reverse, ever), or
    // the check still running; not even the relay.
    CHECK(fallback_route(OwnReach{std::nullopt, "not checked by this tracker", true}) == HiddenRoute::none);
    CHECK(fallback_route(OwnReach{std::nullopt, "checking", true, true}) == HiddenRoute::none);
    CHECK(fallback_route(OwnReach{}) == HiddenRoute::none);
}

TEST_CASE("own reachability being checked: a fetch of hidden holders waits for the verdict instead of failing") {
    using peerd::OwnReach;
    using peerd::wait_for_own_reach;
    auto h1 = holder("h1", kA);
    h1.reachable = false;
    const OwnReach checking{std::nullopt, "checking", false, true};
    const auto hidden = choose_holders("f", {h1}, {"me", "", "", ""}, checking);
    REQUIRE(std::holds_alternative<proto::Error>(hidden));
    CHECK(wait_for_own_reach(hidden, checking));
    // Not checking (a tracker that does not check, or the verdict is in): the error stands.
    const OwnReach unchecked{std::nullopt, "not checked by this tracker", false, false};
    CHECK_FALSE(wait_for_own_reach(choose_holders("f", {h1}, {"me", "", "", ""}, unchecked), unchecked));
    const OwnReach no{false, "refused", false, false};
    CHECK_FALSE(wait_for_own_reach(choose_holders("f", {h1}, {"me", "", "", ""}, no), no));
    // Anything else is no reason to wait: nobody at all, or holders to use.
    CHECK_FALSE(wait_for_own_reach(choose_holders("f", {}, {"me", "", "", ""}, checking), checking));
    auto h2 = holder("h2", kA);
    h2.reachable = true;
    CHECK_FALSE(wait_for_own_reach(choose_holders("f", {h1, h2}, {"me", "", "", ""}, checking), checking));
    // With a relay, the hidden holders have a route even while checking, but
    // the verdict may give a reverse one, which spares the relay: wait.
    const OwnReach relay{std::nullopt, "checking", true, true};
    const auto relayed = choose_holders("f", {h1}, {"me", "", "", ""}, relay);
    REQUIRE(std::holds_alternative<std::vector<proto::Holder>>(relayed));
    CHECK(wait_for_own_reach(relayed, relay));
    // ... not when one of them is reachable: it is dialled directly.
    CHECK_FALSE(wait_for_own_reach(choose_holders("f", {h1, h2}, {"me", "", "", ""}, relay), relay));
}

TEST_CASE("a failed direct connect with no other way: the reason says why and what would fix it") {
    using peerd::no_fallback_reason;
    using peerd::OwnReach;
    CHECK(no_fallback_reason(OwnReach{true, "answered", false}).empty());   // reverse
    CHECK(no_fallback_reason(OwnReach{false, "refused", true}).empty());    // relay
    const auto hidden = no_fallback_reason(OwnReach{false, "connection refused at 127.0.0.3:7000", false});
    CHECK_MESSAGE(hidden.find("this peer is unreachable too (connection refused at 127.0.0.3:7000)") != std::string::npos, hidden);
    CHECK_MESSAGE(hidden.find("trackerd --relay-listen") != std::string::npos, hidden);
    CHECK_MESSAGE(hidden.find("peerd --advertise") != std::string::npos, hidden);
    const auto checking = no_fallback_reason(OwnReach{std::nullopt, "checking", false, true});
    CHECK_MESSAGE(checking.find("still checking this peer's own reachability") != std::string::npos, checking);
    const auto unchecked = no_fallback_reason(OwnReach{std::nullopt, "not checked by this tracker", true, false});
    CHECK_MESSAGE(unchecked.find("not known (not checked by this tracker)") != std::string::npos, unchecked);
}

TEST_CASE("waiting backoff: 1 s doubling to 60 s, jitter at most 10 %") {
    using peershare::peerd::lookup_backoff_ms;
    CHECK(lookup_backoff_ms(1, 0) == 1'000);
    CHECK(lookup_backoff_ms(2, 0) == 2'000);
    CHECK(lookup_backoff_ms(6, 0) == 32'000);
    CHECK(lookup_backoff_ms(7, 0) == 60'000);
    CHECK(lookup_backoff_ms(1000, 0) == 60'000);
    CHECK(lookup_backoff_ms(1000, 1) == 66'000);
    CHECK(lookup_backoff_ms(1, 0.5) == 1'050);
}

TEST_CASE("partial files: a stable name beside the destination; leftovers found and adopted") {
    using namespace peershare::peerd;
    CHECK(partial_path_for("/home/u/in/report.pdf") == "/home/u/in/.report.pdf.peershare-part");
    ScratchDir dir;
    const auto dest = dir.path / "movie.mkv";
    CHECK_FALSE(take_leftover(dest.string()));

    // An older peerd's temporary name is renamed to the stable one and adopted.
    touch(dir.path / ".movie.mkv.peershare-part-Ab12Cd", 10);
    touch(dir.path / "unrelated.txt", 3);
    touch(dir.path / ".other.iso.peershare-part", 7);
    CHECK(take_leftover(dest.string()));
    CHECK(fs::exists(partial_path_for(dest.string())));
    CHECK_FALSE(fs::exists(dir.path / ".movie.mkv.peershare-part-Ab12Cd"));
    CHECK(take_leftover(dest.string()));   // the stable one is there now

    const auto found = find_leftovers({dir.path.string()}, {partial_path_for(dest.string())});
    REQUIRE(found.size() == 1);
    CHECK(found.front().path == (dir.path / ".other.iso.peershare-part").string());
    CHECK(found.front().size == 7);
    CHECK(find_leftovers({(dir.path / "missing").string()}, {}).empty());

    // Another peerd's live transfer (it holds the writer lock) is no leftover.
    {
        auto live = PartialFile::prepare((dir.path / "other.iso").string(), false,
                                         (dir.path / ".other.iso.peershare-part").string(), 7);
        REQUIRE_MESSAGE(live.ok(), (live.ok() ? "" : live.error().message));
        CHECK(find_leftovers({dir.path.string()}, {partial_path_for(dest.string())}).empty());
    }
    CHECK(find_leftovers({dir.path.string()}, {partial_path_for(dest.string())}).size() == 1);   // closed: it is
}

TEST_CASE("transfer messages round trip and reject bad ids") {
    proto::TransferInfo t;
    t.id = 7;
    t.name = "report";
    t.content_id = kA;
    t.state = "running";
    t.done = 10;
    t.total = 100;
    t.rate = 5.5;
    t.eta_s = 16;
    t.destination = "/tmp/report";
    t.sources = {{"h1", 10, 5.5, false, true, ""}};
    auto back = proto::TransferInfo::from_json(t.to_json());
    REQUIRE(back);
    CHECK(back->to_json() == t.to_json());
    t.eta_s = -1;
    CHECK_FALSE(t.to_json().contains("eta_s"));
    CHECK(proto::TransferInfo::from_json(t.to_json())->eta_s == -1);

    proto::TransferList list{{t}, {{"/tmp/.x.peershare-part", 3}}, false};
    auto list_back = proto::TransferList::from_json(list.to_json());
    REQUIRE(list_back);
    CHECK(list_back->leftovers.size() == 1);

    CHECK(proto::PauseTransfer::from_json({{"transfer", 3}}));
    CHECK_FALSE(proto::PauseTransfer::from_json({{"transfer", 0}}));
    CHECK_FALSE(proto::CancelTransfer::from_json({{"transfer", "3"}}));
    CHECK_FALSE(proto::ResumeTransfer::from_json(nlohmann::json::object()));
    proto::TransferAccepted a{4, "report", "/tmp/report", true, 1, 2};
    auto a_back = proto::TransferAccepted::from_json(a.to_json());
    REQUIRE(a_back);
    CHECK(a_back->resumed);
}
