// tracker/web_assets.hpp — the dashboard's files (tracker/web/*), embedded in
// trackerd at build time by cmake/embed_files.cmake; the definitions are
// generated into the build tree (web_assets.cpp).
#pragma once

#include <span>
#include <string_view>

namespace peershare::tracker {

struct WebAsset {
    std::string_view path;           // "/index.html", "/app.js", ...
    std::string_view content_type;   // by extension
    std::string_view bytes;
};

std::span<const WebAsset> web_assets();

}  // namespace peershare::tracker
