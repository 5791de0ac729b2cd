// TEMPORARY placeholder so the tree links while this writer is built in
// parallel; deleted by whoever implements it.
#include "results/history.h"
namespace millstone::results {
std::string default_history_path() {
  return "";
}
}  // namespace millstone::results
