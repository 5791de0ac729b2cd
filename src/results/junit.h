#pragma once
// `--junit FILE`: thresholds and checks as JUnit XML, the format CI systems
// (GitLab, Jenkins, GitHub test reporters) read. One <testsuite> for the
// thresholds and one for the checks; a failed threshold or a check that
// failed at least once is a <failure> with the numbers in its message.
#include <string>

#include "results/record.h"

namespace millstone::results {

std::string junit_xml(const RunRecord& record);
// Throws ResultsError naming the file when it cannot be written.
void write_junit(const RunRecord& record, const std::string& path);

}  // namespace millstone::results
