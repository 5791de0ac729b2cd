#pragma once
// JSON string escaping (RFC 8259 section 7), the one function every writer of
// JSON text by hand uses: the templates' `json` filter, the mock's answers
// and stats, the control APIs' errors. UTF-8 is kept as it is (JSON text is
// UTF-8); `"`, `\` and the C0 controls are escaped, with the short forms
// \n \r \t \b \f and \u00XX for the rest.
#include <string>
#include <string_view>

namespace millstone::text {

void append_json_escaped(std::string_view in, std::string* out);
std::string json_escaped(std::string_view in);
// The escaped text between double quotes: a JSON string literal.
std::string json_quoted(std::string_view in);

}  // namespace millstone::text
