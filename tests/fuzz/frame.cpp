// tests/fuzz/frame.cpp — the session protocol from raw bytes: the frame
// decoder fed the input in one piece and in random splits must agree, then
// each frame goes through parse_envelope and, if its type is a message we
// know (the tracker's sessions and peerd's control socket), its from_json. Invariants: a message that parses
// re-encodes (to_json) to JSON that parses back to the same JSON; its frame
// (make_frame) decodes to the same type and id; a holders reply written
// directly (make_holders_frame) is the same bytes as make_frame's.
// Seeds: tests/fuzz/corpus/frame/, byte streams captured from the suite.
#include <random>
#include <string>
#include <vector>

#include "proto/control.hpp"
#include "proto/frame.hpp"
#include "proto/messages.hpp"
#include "proto/transfers.hpp"
#include "tests/fuzz/check.hpp"

using namespace peershare::proto;
using peershare::fuzz::as_text;

namespace {

template <class... M>
struct Messages {};

using All = Messages<Hello, Welcome, Publish, Unpublish, Lookup, Heartbeat, Fetched, Search, Ping, Pong,
                     Discover, PingPeer, ListPeers, ListEvents, GetStats, Ok, ErrorReply, Holders, Files,
                     IndexReply, Peers, PingResult, Events, EventNotice, Stats,
                     // the control socket's (peerctl <-> peerd)
                     PublishFile, Published, UnpublishFile, ListFiles, Publications, GetStatus, Status,
                     FetchFile, Choices, Progress, FetchedFile, GetLimits, Limits, SetLimits, TransferAccepted,
                     TransferInfo, ListTransfers, TransferList, PauseTransfer, ResumeTransfer, CancelTransfer>;

template <class M>
void round_trip(const Envelope& env) {
    auto parsed = M::from_json(env.body);
    if (!parsed) {
        FUZZ_CHECK(!parsed.error().message.empty());
        return;
    }
    const json once = parsed->to_json();
    auto again = M::from_json(once);
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(again->to_json() == once);

    const auto frame = make_frame(*parsed, env.id);
    FrameDecoder decoder;
    auto frames = decoder.feed(frame);
    FUZZ_CHECK(frames.size() == 1 && !decoder.error() && decoder.buffered() == 0);
    auto back = parse_envelope(frames[0]);
    FUZZ_CHECK(back.ok() && back->type == M::kType && back->id == env.id);
    auto reparsed = M::from_json(back->body);
    FUZZ_CHECK(reparsed.ok() && reparsed->to_json() == once);
    if constexpr (std::is_same_v<M, Holders>) {
        FUZZ_CHECK(make_holders_frame(*parsed, env.id) == frame);
    }
}

template <class... M>
void dispatch(const Envelope& env, Messages<M...>) {
    ((env.type == M::kType ? round_trip<M>(env) : void()), ...);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto bytes = as_text(data, size);
    // The whole stream at once (a small limit, so that the limit is hit too).
    constexpr std::size_t kLimit = 64 * 1024;
    FrameDecoder whole(kLimit);
    const auto frames = whole.feed(bytes);

    // The same stream in splits drawn from the input itself.
    FrameDecoder split(kLimit);
    std::vector<std::string> pieces;
    std::minstd_rand rng(static_cast<std::uint32_t>(std::hash<std::string_view>{}(bytes)));
    for (std::size_t at = 0; at < bytes.size();) {
        const std::size_t n = std::min<std::size_t>(bytes.size() - at, 1 + rng() % 64);
        for (auto& f : split.feed(bytes.substr(at, n))) pieces.push_back(std::move(f));
        FUZZ_CHECK(split.buffered() <= kLimit + 4);
        at += n;
    }
    FUZZ_CHECK(pieces == frames);
    FUZZ_CHECK(whole.error().has_value() == split.error().has_value());
    FUZZ_CHECK(whole.buffered() == split.buffered());

    for (const auto& payload : frames) {
        FUZZ_CHECK(payload.size() <= kLimit);
        FUZZ_CHECK(FrameDecoder(kLimit).feed(encode_frame(payload)) == std::vector<std::string>{payload});
        auto env = parse_envelope(payload);
        if (!env) continue;
        FUZZ_CHECK(env->body.is_object());
        dispatch(*env, All{});
    }
    return 0;
}
