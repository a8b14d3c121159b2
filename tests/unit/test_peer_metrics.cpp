// tests/unit/test_peer_metrics.cpp — peerd's metrics (daemon/metrics.hpp):
// the fetch's words for a dropped source map to bounded labels, and the page
// carries every counter and gauge.
#include <doctest/doctest.h>

#include <string>

#include "daemon/metrics.hpp"

using namespace peershare::peerd;

TEST_CASE("the reasons a fetch drops a source become a handful of labels") {
    CHECK(source_drop_reason("cannot connect: Connection refused") == "cannot_connect");
    CHECK(source_drop_reason("does not have this file (HTTP 404)") == "not_found");
    CHECK(source_drop_reason("does not honour Range requests (HTTP 200)") == "no_range_support");
    CHECK(source_drop_reason("sent a bad piece list: size: missing") == "bad_piece_list");
    CHECK(source_drop_reason("sent a piece list that is not a JSON object") == "bad_piece_list");
    CHECK(source_drop_reason("busy (HTTP 503) 10 times in a row") == "busy");
    CHECK(source_drop_reason("3 failures, the last: sent piece 4 that does not match its hash") == "failures");
    CHECK(source_drop_reason("something new") == "other");
}

TEST_CASE("peerd's page has every counter, by reason where there is one") {
    PeerMetrics m;
    m.downloaded_bytes = 20;
    m.pieces_verified = 3;
    m.pieces_rejected = 1;
    m.upload_rate_limit_waits = 2;
    m.download_rate_limit_waits = 5;
    m.count_dropped_source("busy (HTTP 503) 10 times in a row");
    m.count_dropped_source("busy (HTTP 503) 10 times in a row");
    PeerGauges g;
    g.uploaded_bytes = 10;
    g.upload_slots = 64;
    g.tracker_connected = true;
    g.transfers["running"] = 1;
    g.connect_backs_taken = 4;
    g.connect_backs_refused = 7;
    const auto page = render_peer_metrics(m, g);
    for (const char* line : {"peershare_peer_uploaded_bytes_total 10\n", "peershare_peer_downloaded_bytes_total 20\n",
                             "peershare_peer_pieces_verified_total 3\n", "peershare_peer_pieces_rejected_total 1\n",
                             "peershare_peer_rate_limit_waits_total{direction=\"upload\"} 2\n",
                             "peershare_peer_rate_limit_waits_total{direction=\"download\"} 5\n",
                             "peershare_peer_sources_dropped_total{reason=\"busy\"} 2\n",
                             "peershare_peer_upload_slots 64\n", "peershare_peer_tracker_connected 1\n",
                             "peershare_peer_transfers{state=\"running\"} 1\n",
                             "peershare_peer_connect_backs_total{result=\"taken\"} 4\n",
                             "peershare_peer_connect_backs_total{result=\"refused\"} 7\n"}) {
        CAPTURE(line);
        CHECK(page.find(line) != std::string::npos);
    }
}
