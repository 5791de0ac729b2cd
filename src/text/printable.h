#pragma once
// Text that came from outside (a target's bodies, headers and messages, an
// input file, the run history) made safe to print on a terminal. The one
// function every printer of such text uses (CONTRIBUTING.md).
#include <string>
#include <string_view>

namespace millstone::text {

// `in` with every byte that could act on a terminal written out instead:
// C0 controls as \n, \r, \t or \xNN, DEL as \x7f, C1 controls (U+0080 to
// U+009F) and the bidirectional-override characters (which reorder what is
// displayed) as \uNNNN; each byte that is not part of valid UTF-8 becomes
// U+FFFD. Printable UTF-8 is kept as is. A backslash is kept too: the result
// is for reading, not for decoding back.
std::string printable(std::string_view in);

}  // namespace millstone::text
