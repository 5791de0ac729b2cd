#pragma once
// The HTML report's front-end files, compiled in by cmake/embed_assets.cmake
// (the block at the end of src/CMakeLists.txt): uPlot from report/node_modules
// and the template, scripts and style sheet from report/.
#include <string_view>

namespace millstone::results::assets {

std::string_view uplot_js();
std::string_view uplot_css();
std::string_view report_template();
std::string_view report_js();
std::string_view report_css();
std::string_view compare_js();  // the comparison page's view (report/compare.js)

}  // namespace millstone::results::assets
