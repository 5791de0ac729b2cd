// Every error path of the scenario loader, with its exact one-line message:
// FILE:LINE:COL, what was wrong, what was expected.
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "scenario/loader.h"

namespace millstone::scenario {
namespace loader_errors_test {

const std::string kDataDir = MILLSTONE_SOURCE_DIR "/tests/scenario/data";

struct ErrorCase {
  const char* name;
  std::string_view yaml;
  std::string_view message;  // "" = must load; DATA stands for the fixtures' folder
};

// clang-format off
const ErrorCase kCases[] = {
    {"EmptyFile",
     R"yaml()yaml",
     "s.yaml:1:1: the scenario is empty; expected a map with target: and flows:"},
    {"UnknownTopKey",
     R"yaml(target: http://localhost:9
flow: {}
)yaml",
     "s.yaml:2:1: unknown key \"flow\" in the scenario (did you mean \"flows\"?); expected one of: name, target, seed, defaults, vars, data, flows, scenarios, thresholds, slo, drills, proxies, monitor, amqp, grpc"},
    {"NoTarget",
     R"yaml(flows: {a: {steps: [{get: /}]}}
)yaml",
     "s.yaml:1:1: the scenario has no target; expected e.g. target: http://127.0.0.1:8080"},
    {"TargetWithPath",
     R"yaml(target: http://localhost:9/api
flows: {a: {steps: [{get: /}]}}
)yaml",
     "s.yaml:1:9: target \"http://localhost:9/api\" has a path or query \"/api\"; expected only scheme, host and port, such as http://127.0.0.1:8080 (paths belong in the steps)"},
    {"SeedNotNumber",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
seed: abc
)yaml",
     "s.yaml:3:7: seed \"abc\" is not a whole number; expected 0 to 18446744073709551615"},
    {"MergeKeyUse",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
defaults:
  <<: {timeout: 1s}
)yaml",
     "s.yaml:4:3: defaults uses a YAML merge key (<<), which is not supported; expected the keys written out (aliases of whole values work)"},
    {"TwoDocuments",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
---
target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
)yaml",
     "s.yaml:3:1: a second YAML document starts here; expected one document per file"},
    {"BadYaml",
     R"yaml(target: http://localhost:9
flows:
  a: [
)yaml",
     "s.yaml:4:1: invalid YAML: end of sequence flow not found; expected well-formed YAML"},
    {"VarReserved",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
vars: {uuid: x}
)yaml",
     "s.yaml:3:8: variable name \"uuid\" is a built-in of templates; expected another name (built-ins: vu, iteration, worker, uuid, random(A, B), now, now_ms, now_iso, corr)"},
    {"VarDotted",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
vars: {a.b: x}
)yaml",
     "s.yaml:3:8: variable name \"a.b\" is not usable in templates; expected letters, digits and _, not starting with a digit"},
    {"VarNotScalar",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
vars: {a: [1]}
)yaml",
     "s.yaml:3:11: variable a is a list; expected a text or number (vars are constants)"},
    {"DataMissingFile",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
data: {users: {file: nope.csv}}
)yaml",
     "s.yaml:3:22: data file \"DATA/nope.csv\" cannot be read: No such file or directory; expected a path relative to the scenario file"},
    {"DataBadExtension",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
data: {users: users.txt}
)yaml",
     "s.yaml:3:15: data file \"users.txt\" is neither .csv nor .json; expected a CSV file with a header row or a JSON array of objects"},
    {"DataModeTypo",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
data: {users: {file: users.csv, mode: uniqe}}
)yaml",
     "s.yaml:3:39: unknown mode \"uniqe\" (did you mean \"unique\"?); expected sequential, random, unique or per_vu"},
    {"DataNoFile",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
data: {users: {mode: random}}
)yaml",
     "s.yaml:3:15: data source \"users\" has no file; expected e.g. {file: users.csv, mode: unique}"},
    {"DataRagged",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
data: {users: ragged.csv}
)yaml",
     "DATA/ragged.csv:3: row has 1 field; expected 2, as in the header (quote fields that contain commas)"},
    {"DataEmpty",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
data: {users: empty.csv}
)yaml",
     "DATA/empty.csv: the file is empty; expected a header row, then one row per record"},
    {"DataNameClash",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
vars: {users: x}
data: {users: users.csv}
)yaml",
     "s.yaml:4:8: data source \"users\" has the name of a variable in vars:; expected distinct names"},
    {"DefaultsTimeoutNoUnit",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
defaults: {timeout: 5}
)yaml",
     "s.yaml:3:21: timeout \"5\" has no unit; expected a number and a unit, such as 20ms, 1.5s, 250us or 2m"},
    {"DefaultsHost",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
defaults: {headers: {Host: x}}
)yaml",
     "s.yaml:3:22: header Host is set by millstone (from target: and the body); expected other headers"},
    {"DefaultsTypo",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
defaults: {timout: 5s}
)yaml",
     "s.yaml:3:12: unknown key \"timout\" in defaults (did you mean \"timeout\"?); expected one of: headers, timeout, max_body_capture, tls, http"},
    {"DefaultsBadHeaderName",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
defaults: {headers: {"X A": x}}
)yaml",
     "s.yaml:3:22: header name \"X A\" is not an HTTP token; expected letters, digits and !#$%&'*+-.^_`|~"},
    {"NoFlows",
     R"yaml(target: http://localhost:9
)yaml",
     "s.yaml:1:1: the scenario has no flows; expected flows: with at least one flow"},
    {"FlowsEmpty",
     R"yaml(target: http://localhost:9
flows: {}
)yaml",
     "s.yaml:2:8: flows is empty; expected at least one flow, e.g. flows: {browse: {steps: [{get: /}]}}"},
    {"FlowNoSteps",
     R"yaml(target: http://localhost:9
flows: {a: {weight: 2}}
)yaml",
     "s.yaml:2:12: flow \"a\" has no steps; expected steps: with a list such as [{get: /}]"},
    {"StepsEmpty",
     R"yaml(target: http://localhost:9
flows: {a: {steps: []}}
)yaml",
     "s.yaml:2:20: steps is an empty list; expected a list of steps, each starting with \"- \""},
    {"FlowNameSlash",
     R"yaml(target: http://localhost:9
flows: {a/b: {steps: [{get: /}]}}
)yaml",
     "s.yaml:2:9: flow name \"a/b\" contains '/'; expected a label without / { } (/ joins flow, group and step names)"},
    {"StepTypo",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        extarct: {}
)yaml",
     "s.yaml:6:9: unknown key \"extarct\" in step (did you mean \"extract\"?); expected one of: name, get, post, put, patch, delete, head, options, request, headers, query, json, body, form, timeout, check, extract, think, group, loop, steps, ws.connect, ws.send, ws.expect, ws.hold, ws.close, tcp.connect, tcp.send, tcp.expect, tcp.hold, tcp.close, subprotocol, tls, http, amqp.publish, amqp.expect, grpc, until"},
    {"StepForeignName",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        capture: {}
)yaml",
     "s.yaml:6:9: unknown key \"capture\" in step (did you mean \"extract\"?); expected one of: name, get, post, put, patch, delete, head, options, request, headers, query, json, body, form, timeout, check, extract, think, group, loop, steps, ws.connect, ws.send, ws.expect, ws.hold, ws.close, tcp.connect, tcp.send, tcp.expect, tcp.hold, tcp.close, subprotocol, tls, http, amqp.publish, amqp.expect, grpc, until"},
    {"StepTwoActions",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        post: /
)yaml",
     "s.yaml:6:9: step has both get and post; expected one action per step (make two steps)"},
    {"StepNoAction",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - name: x
)yaml",
     "s.yaml:5:9: step has no action; expected one of get, post, put, patch, delete, head, options, request, think, group, loop, ws.connect, ws.send, ws.expect, ws.hold, ws.close, tcp.connect, tcp.send, tcp.expect, tcp.hold, tcp.close, amqp.publish, amqp.expect or grpc"},
    {"StepScalar",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - think 1s
)yaml",
     "s.yaml:5:9: step is a single value; expected a map such as {get: /path}, {think: 1s}, {group: NAME, steps: [...]} or {loop: 3, steps: [...]}"},
    {"HeadersOnThink",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - think: 1s
        headers: {}
)yaml",
     "s.yaml:6:9: headers does not apply to a think step; expected think alone"},
    {"NullPath",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - post:
        name: x
)yaml",
     "s.yaml:5:9: post is empty; expected a path such as /login"},
    {"AbsoluteUrl",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: http://example.com/x
)yaml",
     "s.yaml:5:14: path \"http://example.com/x\" is a URL; use a path; the host comes from target: (one target per file), e.g. /login"},
    {"PathNoSlash",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: login
)yaml",
     "s.yaml:5:14: path \"login\" does not start with /; expected e.g. /login or /items/{{ id }}"},
    {"PathSpace",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /a b
)yaml",
     "s.yaml:5:16: path \"/a b\" contains a space or control byte; expected %20 for a space, and no fragment (#) or control characters"},
    {"UnknownVariablePlain",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /x/{{ tokn }}
        extract: {token: {json: $.t}}
)yaml",
     "s.yaml:5:20: path uses unknown variable \"tokn\" (did you mean \"token\"?); expected a name from vars:, a data column (source.column), a name some extract: sets, or a built-in (vu, iteration, worker, uuid, random(A, B), now, now_ms, now_iso, corr); known: token"},
    {"UnknownVariableQuoted",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: "/x/{{ tokn }}"
)yaml",
     "s.yaml:5:21: path uses unknown variable \"tokn\"; expected a name from vars:, a data column (source.column), a name some extract: sets, or a built-in (vu, iteration, worker, uuid, random(A, B), now, now_ms, now_iso, corr); known: none"},
    {"UnknownVariableHeader",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        headers: {Authorization: "Bearer {{ user.name }}"}
)yaml",
     "s.yaml:6:45: header Authorization uses unknown variable \"user.name\"; expected a name from vars:, a data column (source.column), a name some extract: sets, or a built-in (vu, iteration, worker, uuid, random(A, B), now, now_ms, now_iso, corr); known: none"},
    {"UnclosedTemplate",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: "/x/{{ vu"
)yaml",
     "s.yaml:5:18: path has a broken template: unclosed '{{'; expected {{ name }}, {{ name | urlencode }} or {{ random(1, 10) }} (see docs/scenarios.md#templates)"},
    {"UnknownFunction",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: "/x/{{ rand(1, 2) }}"
)yaml",
     "s.yaml:5:21: path has a broken template: unknown function 'rand'; expected {{ name }}, {{ name | urlencode }} or {{ random(1, 10) }} (see docs/scenarios.md#templates)"},
    {"UnquotedTemplate",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - post: /
        json: {user: {{ vu }}}
)yaml",
     "s.yaml:6:22: json object is a template written without quotes, which YAML reads as a map; expected it in quotes, such as \"{{ users.name }}\""},
    {"JsonScalar",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - post: /
        json: '{"a": 1}'
)yaml",
     "s.yaml:6:15: json is a single value; expected a map or a list (for JSON written as text use body: with a Content-Type header)"},
    {"JsonAndBody",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - post: /
        json: {a: 1}
        body: x
)yaml",
     "s.yaml:7:9: step has both json and body; expected one body"},
    {"JsonBadTag",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - post: /
        json: {a: !!binary aGk=}
)yaml",
     "s.yaml:6:19: json value has the tag \"tag:yaml.org,2002:binary\"; expected no tag, !!str, or !raw (a template inserted without quotes)"},
    {"DuplicateStepNames",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
      - get: /
)yaml",
     "s.yaml:6:9: step name \"a/GET /\" is already used at line 5; expected unique step names within a flow (give one of them a name:)"},
    {"StepNameSlash",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        name: a/b
)yaml",
     "s.yaml:6:15: step name \"a/b\" contains '/'; expected a label without / { } (/ joins flow, group and step names)"},
    {"LowercaseMethod",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - request: {method: purge, path: /}
)yaml",
     "s.yaml:5:27: method \"purge\" has lowercase letters, and HTTP methods are case-sensitive; expected PURGE"},
    {"RequestNoPath",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - request: {method: PURGE}
)yaml",
     "s.yaml:5:18: request has no path; expected e.g. {method: PURGE, path: /cache}"},
    {"StatusOutOfRange",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        check: {status: 700}
)yaml",
     "s.yaml:6:25: status \"700\" is not an HTTP status; expected 100 to 599, a list such as [200, 201], or a class such as \"2xx\""},
    {"StatusClassBad",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        check: {status: 7xx}
)yaml",
     "s.yaml:6:25: status class \"7xx\" does not exist; expected 1xx to 5xx"},
    {"CheckTypo",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        check: {staus: 200}
)yaml",
     "s.yaml:6:17: unknown key \"staus\" in check (did you mean \"status\"?); expected one of: status, header, body, json, duration"},
    {"CheckJsonBadPath",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        check: {json: {token: {exists: true}}}
)yaml",
     "s.yaml:6:24: json check: invalid JSON path \"token\" at column 1: expected '$' at the start of the path, found 't'"},
    {"CheckBodyOpTypo",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        check: {body: {contain: x}}
)yaml",
     "s.yaml:6:24: unknown key \"contain\" in check on body (did you mean \"contains\"?); expected one of: contains, not_contains, matches, equals"},
    {"CheckBodyScalar",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        check: {body: ok}
)yaml",
     "s.yaml:6:23: check on body is a single value; expected a map of contains | not_contains | matches | equals, e.g. {contains: ...}"},
    {"CheckDurationNoUnit",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        check: {duration: {lt: 500}}
)yaml",
     "s.yaml:6:32: lt \"500\" has no unit; expected a number and a unit, such as 20ms, 1.5s, 250us or 2m"},
    {"CheckGtNotNumber",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        check: {json: {$.a: {gt: many}}}
)yaml",
     "s.yaml:6:34: check on json $.a: gt expects a number, got \"many\"; expected a number, such as {gt: 10}"},
    {"CheckBadRegex",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        check: {body: {matches: '(a'}}
)yaml",
     "s.yaml:6:33: check on body: matches expects a valid regex, got '(a': missing ): (a; expected an RE2 regular expression, such as 'id\":\\d+'"},
    {"ExtractNoSource",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        extract: {t: {default: x}}
)yaml",
     "s.yaml:6:22: extract t has no source; expected one of json, regex, header, cookie, status or body, e.g. {json: $.token}"},
    {"ExtractTwoSources",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        extract: {t: {json: $.a, header: X}}
)yaml",
     "s.yaml:6:34: extract t has both json and header; expected one source"},
    {"ExtractBadRegex",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        extract: {t: {regex: '(a'}}
)yaml",
     "s.yaml:6:30: extract t: invalid regex '(a': missing ): (a; expected a valid RE2 pattern"},
    {"ExtractGroupRange",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        extract: {t: {regex: 'a(b)', group: 2}}
)yaml",
     "s.yaml:6:45: group 2 is out of range: the regex has 1 capture group; expected 0 (the whole match) to 1"},
    {"ExtractGroupWithJson",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        extract: {t: {json: $.a, group: 1}}
)yaml",
     "s.yaml:6:34: group applies only to regex; expected no group here"},
    {"ExtractReserved",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        extract: {uuid: {json: $.a}}
)yaml",
     "s.yaml:6:19: extracted name \"uuid\" is a built-in of templates; expected another name"},
    {"ExtractConstant",
     R"yaml(vars: {t: x}
target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        extract: {t: {json: $.a}}
)yaml",
     "s.yaml:7:19: extracted name \"t\" is a constant in vars:; expected another name (constants never change)"},
    {"ExtractStatusFalse",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        extract: {t: {status: false}}
)yaml",
     "s.yaml:6:31: status: false extracts nothing; expected status: true"},
    {"LoopZero",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - loop: 0
        steps: [{get: /}]
)yaml",
     "s.yaml:5:15: loop \"0\" is out of range; expected a whole number from 1 to 1000000"},
    {"LoopNoSteps",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - loop: 2
)yaml",
     "s.yaml:5:9: loop step has no steps; expected steps: with a list of steps"},
    {"ThinkRangeBad",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - think: 1s..x
)yaml",
     "s.yaml:5:16: think \"x\" is not a duration; expected a number and a unit, such as 20ms, 1.5s, 250us or 2m"},
    {"ThinkReversed",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - think: 3s..1s
)yaml",
     "s.yaml:5:16: think \"3s..1s\" ends before it starts; expected MIN..MAX with MIN <= MAX"},
    {"ThinkDistribution",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - think: {distribution: lognormal, median: 1s}
)yaml",
     "s.yaml:5:16: a lognormal distribution needs exactly one of p99 or sigma; expected median and either p99 or sigma"},
    {"WeightZero",
     R"yaml(target: http://localhost:9
flows: {a: {weight: 0, steps: [{get: /}]}}
)yaml",
     "s.yaml:2:21: weight is 0; expected a number above 0 (to leave a flow out, list the others in the scenario's flows:)"},
    {"PolicyTypo",
     R"yaml(target: http://localhost:9
flows: {a: {on_check_failure: abort, steps: [{get: /}]}}
)yaml",
     "s.yaml:2:31: on_check_failure \"abort\" is not a policy; expected abort_iteration or continue"},
    {"TimeoutZero",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        timeout: 0s
)yaml",
     "s.yaml:6:18: timeout is 0; expected a duration above 0, such as 2s"},
    {"ExecutorTypo",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
scenarios: {s: {executor: constant-vu, vus: 1, duration: 1s}}
)yaml",
     "s.yaml:3:27: unknown executor \"constant-vu\" (did you mean \"constant-vus\"?); expected constant-vus, ramping-vus, constant-arrival-rate, ramping-arrival-rate or iterations"},
    {"ExecutorMissing",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
scenarios: {s: {vus: 1}}
)yaml",
     "s.yaml:3:16: scenario s has no executor; expected executor: constant-vus, ramping-vus, constant-arrival-rate, ramping-arrival-rate or iterations"},
    {"ExecutorKeyNotApplicable",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
scenarios: {s: {executor: constant-arrival-rate, vus: 1, rate: 1, duration: 1s, pre_allocated_vus: 1}}
)yaml",
     "s.yaml:3:50: vus does not apply to constant-arrival-rate; expected rate, duration, pre_allocated_vus, max_vus (and start, graceful_stop, flows), e.g. {executor: constant-arrival-rate, rate: 100, duration: 30s, pre_allocated_vus: 20}"},
    {"ExecutorMissingDuration",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
scenarios: {s: {executor: constant-vus, vus: 1}}
)yaml",
     "s.yaml:3:16: constant-vus executor needs duration; expected e.g. {executor: constant-vus, vus: 10, duration: 30s}"},
    {"ExecutorZeroVus",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
scenarios: {s: {executor: constant-vus, vus: 0, duration: 1s}}
)yaml",
     "s.yaml:3:46: vus \"0\" is out of range; expected a whole number from 1 to 10000000"},
    {"ExecutorFractionVus",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
scenarios: {s: {executor: constant-vus, vus: 1.5, duration: 1s}}
)yaml",
     "s.yaml:3:46: vus \"1.5\" is not a whole number; expected a whole number from 1 to 10000000"},
    {"MaxVusBelowPre",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
scenarios: {s: {executor: constant-arrival-rate, rate: 10, duration: 1s, pre_allocated_vus: 5, max_vus: 2}}
)yaml",
     "s.yaml:3:105: max_vus 2 is below pre_allocated_vus 5; expected max_vus >= pre_allocated_vus"},
    {"RateZero",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
scenarios: {s: {executor: constant-arrival-rate, rate: 0, duration: 1s, pre_allocated_vus: 1}}
)yaml",
     "s.yaml:3:56: rate is 0; expected iterations per second above 0"},
    {"RateBad",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
scenarios: {s: {executor: constant-arrival-rate, rate: 10/d, duration: 1s, pre_allocated_vus: 1}}
)yaml",
     "s.yaml:3:56: rate \"10/d\" is not a rate; expected iterations per second from 0 to 10000000, such as 100, 100/s or 6000/m"},
    {"PreAllocatedMissing",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
scenarios: {s: {executor: constant-arrival-rate, rate: 1, duration: 1s}}
)yaml",
     "s.yaml:3:16: constant-arrival-rate executor needs pre_allocated_vus; expected e.g. {executor: constant-arrival-rate, rate: 100, duration: 30s, pre_allocated_vus: 20}"},
    {"CamelCaseKey",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
scenarios: {s: {executor: constant-arrival-rate, rate: 1, duration: 1s, preAllocatedVUs: 1}}
)yaml",
     "s.yaml:3:73: unknown key \"preAllocatedVUs\" in scenario s (did you mean \"pre_allocated_vus\"?); expected one of: executor, start, graceful_stop, flows, vus, duration, start_vus, stages, rate, start_rate, pre_allocated_vus, max_vus, iterations, max_duration"},
    {"StagesEmpty",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
scenarios: {s: {executor: ramping-vus, stages: []}}
)yaml",
     "s.yaml:3:48: stages is an empty list; expected a list such as [{duration: 10s, target: 50}]"},
    {"StagesAllZero",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
scenarios: {s: {executor: ramping-vus, stages: [{duration: 1s, target: 0}]}}
)yaml",
     "s.yaml:3:48: every stage targets 0 VUs and start_vus is 0; expected some stage with target above 0"},
    {"StageNoTarget",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
scenarios: {s: {executor: ramping-vus, stages: [{duration: 1s}]}}
)yaml",
     "s.yaml:3:49: stage has no target; expected e.g. {duration: 10s, target: 50}"},
    {"StagesZeroLong",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
scenarios: {s: {executor: ramping-arrival-rate, pre_allocated_vus: 1, stages: [{duration: 0s, target: 5}]}}
)yaml",
     "s.yaml:3:79: stages last 0s in total; expected some stage with a duration above 0"},
    {"IterationsBelowVus",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
scenarios: {s: {executor: iterations, vus: 10, iterations: 5}}
)yaml",
     "s.yaml:3:60: iterations 5 is fewer than vus 10; expected at least one iteration per VU"},
    {"StartAfterUnknown",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
scenarios:
  steady: {executor: constant-vus, duration: 1s}
  b: {executor: constant-vus, duration: 1s, start: after stedy}
)yaml",
     "s.yaml:5:52: start: after \"stedy\" names no scenario (did you mean \"steady\"?); expected one of: steady, b"},
    {"StartAfterItself",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
scenarios:
  b: {executor: constant-vus, duration: 1s, start: after b}
)yaml",
     "s.yaml:4:52: scenario \"b\" starts after itself; expected another scenario's name"},
    {"StartCycle",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
scenarios:
  a: {executor: constant-vus, duration: 1s, start: after c}
  b: {executor: constant-vus, duration: 1s, start: after a}
  c: {executor: constant-vus, duration: 1s, start: after b}
)yaml",
     "s.yaml:5:52: start: after makes a cycle: \"b\" starts after \"a\", which starts after \"c\", which starts after \"b\"; expected each scenario to follow one that can start without it"},
    {"StartNoUnit",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
scenarios:
  a: {executor: constant-vus, duration: 1s, start: 30}
)yaml",
     "s.yaml:4:52: start \"30\" has no unit; expected a number and a unit, such as 20ms, 1.5s, 250us or 2m"},
    {"ScenarioUnknownFlow",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
scenarios: {s: {executor: constant-vus, duration: 1s, flows: [b]}}
)yaml",
     "s.yaml:3:63: no flow is named \"b\"; expected one of: a"},
    {"ScenarioFlowTwice",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
scenarios: {s: {executor: constant-vus, duration: 1s, flows: [a, a]}}
)yaml",
     "s.yaml:3:66: flow \"a\" is listed twice; expected each flow once (weights set the mix)"},
    {"ScenariosEmpty",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
scenarios: {}
)yaml",
     "s.yaml:3:12: scenarios is empty; expected at least one scenario, e.g. steady: {executor: constant-vus, vus: 10, duration: 30s}"},
    {"ThresholdsNotList",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
thresholds: latency.p99 < 1s
)yaml",
     "s.yaml:3:13: thresholds is a single value; expected a list of strings such as [\"latency.p99 < 200ms\", \"checks > 99%\"]"},
    {"ThresholdUnknownMetric",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
thresholds: [latncy.p99 < 1s]
)yaml",
     "s.yaml:3:14: unknown metric \"latncy.p99\" (did you mean \"latency\"?); expected latency.pNN (p50, p95, p99.9...), latency.min, latency.max, latency.mean, checks, error_rate, requests, rps, iterations, dropped_iterations or target.SERIES"},
    {"ThresholdK6Metric",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
thresholds: ['http_req_duration < 1s']
)yaml",
     "s.yaml:3:15: unknown metric \"http_req_duration\" (did you mean \"latency\"?); expected latency.pNN (p50, p95, p99.9...), latency.min, latency.max, latency.mean, checks, error_rate, requests, rps, iterations, dropped_iterations or target.SERIES"},
    {"ThresholdAvg",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
thresholds: [latency.avg < 1s]
)yaml",
     "s.yaml:3:22: unknown latency statistic \"avg\" (did you mean \"mean\"?); expected p50, p90, p95, p99, p99.9 (any pNN), min, max or mean"},
    {"ThresholdK6Percentile",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
thresholds: ['latency.p(95) < 1s']
)yaml",
     "s.yaml:3:23: unknown latency statistic \"p(95)\" (did you mean \"p95\"?); expected p50, p90, p95, p99, p99.9 (any pNN), min, max or mean"},
    {"ThresholdPercentileRange",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
thresholds: [latency.p101 < 1s]
)yaml",
     "s.yaml:3:22: percentile \"p101\" is out of range; expected p followed by a number above 0 and at most 100, such as p99 or p99.9"},
    {"ThresholdNoStatistic",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
thresholds: [latency < 1s]
)yaml",
     "s.yaml:3:21: latency needs a statistic; expected latency.p99, latency.p95, latency.min, latency.max or latency.mean"},
    {"ThresholdNoUnit",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
thresholds: [latency.p99 < 200]
)yaml",
     "s.yaml:3:28: latency \"200\" has no unit; expected a number and a unit, such as 200ms"},
    {"ThresholdBadUnit",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
thresholds: [latency.p99 < 2min]
)yaml",
     "s.yaml:3:29: unknown unit \"min\"; expected us, ms or s"},
    {"ThresholdPercentTooBig",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
thresholds: [error_rate < 150%]
)yaml",
     "s.yaml:3:27: \"150%\" is not a rate; expected a percentage such as 99.9% or a fraction from 0 to 1 such as 0.999"},
    {"ThresholdFractionTooBig",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
thresholds: [error_rate < 5]
)yaml",
     "s.yaml:3:27: \"5\" is not a rate; expected a percentage such as 99.9% or a fraction from 0 to 1 such as 0.999"},
    {"ThresholdSingleEquals",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
thresholds: [requests = 5]
)yaml",
     "s.yaml:3:23: '=' is not a comparison; expected ==, <, <=, > or >="},
    {"ThresholdNoOperator",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
thresholds: [requests 5]
)yaml",
     "s.yaml:3:23: \"5\" where a comparison belongs; expected <, <=, >, >= or ==, e.g. requests > 100"},
    {"ThresholdNoValue",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
thresholds: [requests >]
)yaml",
     "s.yaml:3:24: no value after the comparison; expected e.g. requests > 100"},
    {"ThresholdCountFraction",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
thresholds: [requests > 1.5]
)yaml",
     "s.yaml:3:25: \"1.5\" is not a count; expected a whole number, e.g. requests > 100"},
    {"ThresholdStatOnCount",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
thresholds: [requests.p99 > 1]
)yaml",
     "s.yaml:3:22: requests has no statistic \".p99\"; expected requests alone, e.g. requests > 100"},
    {"ThresholdWrongTag",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
thresholds: ['error_rate{flow=a} < 1%']
)yaml",
     "s.yaml:3:26: error_rate cannot be filtered by \"flow\"; expected one of: step"},
    {"ThresholdTagNoEquals",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
thresholds: ['latency.p99{step} < 1s']
)yaml",
     "s.yaml:3:27: tag filter \"step\" has no '='; expected {name=value}, e.g. {step=login}"},
    {"ThresholdTagUnclosed",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
thresholds: ['latency.p99{step=a < 1s']
)yaml",
     "s.yaml:3:26: the tag filter is not closed; expected {name=value}, e.g. {step=login}"},
    {"ThresholdUnknownStep",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
thresholds: ['latency.p99{step=GET /x} < 1s']
)yaml",
     "s.yaml:3:32: no step is named \"GET /x\" (did you mean \"a/GET /\"?); expected one of: a/GET /"},
    {"ThresholdAmbiguousStep",
     R"yaml(target: http://localhost:9
flows:
  a: {steps: [{get: /, name: login}]}
  b: {steps: [{get: /, name: login}]}
thresholds: ['latency.p99{step=login} < 1s']
)yaml",
     "s.yaml:5:32: step \"login\" is ambiguous; expected one of the full names: a/login, b/login"},
    {"ThresholdUnknownFlow",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
thresholds: ['iterations{flow=b} > 1']
)yaml",
     "s.yaml:3:31: no flow is named \"b\"; expected one of: a"},
    {"ThresholdUnknownCheck",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /, check: {status: 200}}]}}
thresholds: ['checks{check=status 200} > 99%']
)yaml",
     "s.yaml:3:28: no check is named \"status 200\"; expected one of: a/GET /: status in [200]"},
    {"ThresholdChecksWithoutChecks",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
thresholds: ['checks > 99%']
)yaml",
     "s.yaml:3:14: a checks threshold, but no step has a check:; expected check: on the steps it should judge (with no checks it would measure nothing)"},
    {"ThresholdColonMap",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /, check: {status: 200}}]}}
thresholds:
  - checks{check=a/GET /: status in [200]} > 99%
)yaml",
     "s.yaml:4:5: threshold is a map (YAML reads \": \" as a key); expected a string, in quotes when it contains \": \""},
    {"ThresholdEmpty",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
thresholds: ['  ']
)yaml",
     "s.yaml:3:15: the threshold is empty; expected e.g. \"latency.p99 < 200ms\""},
    {"ExtractJsonBadPath",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        extract: {t: {json: token}}
)yaml",
     "s.yaml:6:29: extract t: invalid JSON path \"token\" at column 1: expected '$' at the start of the path, found 't'"},
    {"CheckLengthBad",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        check: {json: {$.a: {length: -1}}}
)yaml",
     "s.yaml:6:38: check on json $.a: length expects a whole number >= 0, got \"-1\"; expected a whole number, such as {length: 3}"},
    {"CheckOneOfScalar",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        check: {json: {$.a: {one_of: x}}}
)yaml",
     "s.yaml:6:38: check on json $.a: one_of expects a list of values, got \"x\"; expected a list such as {one_of: [paid, created]}"},
    {"HeaderValueNewline",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        headers: {X: "a\nb"}
)yaml",
     "s.yaml:6:22: header X value \"a\\x0ab\" contains control characters; expected one line of text"},
    {"QueryUnknownVariable",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: /
        query: {q: "{{ term }}"}
)yaml",
     "s.yaml:6:24: query q uses unknown variable \"term\"; expected a name from vars:, a data column (source.column), a name some extract: sets, or a built-in (vu, iteration, worker, uuid, random(A, B), now, now_ms, now_iso, corr); known: none"},
    {"FormNotMap",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - post: /
        form: [a]
)yaml",
     "s.yaml:6:15: form is a list; expected a map"},
    {"GroupNameSlash",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - group: a/b
        steps: [{get: /}]
)yaml",
     "s.yaml:5:16: group name \"a/b\" contains '/'; expected a label without / { } (/ joins flow, group and step names)"},
    {"GroupWithName",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - group: g
        name: x
        steps: [{get: /}]
)yaml",
     "s.yaml:6:9: name does not apply to a group step; expected steps"},
    {"PathFragment",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - get: "/a#b"
)yaml",
     "s.yaml:5:17: path \"/a#b\" contains '#'; expected %20 for a space, and no fragment (#) or control characters"},
    {"DataColumnBad",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
data: {d: {file: bad_column.csv}}
)yaml",
     "DATA/bad_column.csv:1: column \"first name\" is not usable in templates; expected a name of letters, digits and _ (rename it in the header row)"},
    {"ThresholdStepTypoSuggestsTheFullName",
     R"yaml(target: http://localhost:9
flows: {shopper: {steps: [{name: login, get: /login}, {name: cart, get: /cart}]}}
thresholds: ["latency.p99{step=logn} < 1s"]
)yaml",
     "s.yaml:3:32: no step is named \"logn\" (did you mean \"shopper/login\"?); expected one of: shopper/login, shopper/cart"},
    {"AliasBomb",
     R"yaml(target: http://localhost:9
a: &a [x, x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
)yaml",
     "s.yaml:8:16: invalid YAML: aliases expand the document to more than 4000000 nodes (a \"billion laughs\"); expected aliases of small values, or the values written out"},
    {"TargetWithQuery",
     R"yaml(target: http://localhost:9?x=1
flows: {a: {steps: [{get: /}]}}
)yaml",
     "s.yaml:1:9: target \"http://localhost:9?x=1\" has a path or query \"/?x=1\"; expected only scheme, host and port, such as http://127.0.0.1:8080 (paths belong in the steps)"},
    // docs/scenarios.md: steps read no files; body_file is the mock's key.
    {"BodyFileIsNotAStepKey",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{post: /x, body_file: b.json}]}}
)yaml",
     "s.yaml:2:32: unknown key \"body_file\" in step; expected one of: name, get, post, put, patch, delete, head, options, request, headers, query, json, body, form, timeout, check, extract, think, group, loop, steps, ws.connect, ws.send, ws.expect, ws.hold, ws.close, tcp.connect, tcp.send, tcp.expect, tcp.hold, tcp.close, subprotocol, tls, http, amqp.publish, amqp.expect, grpc, until"},
    {"TargetWithSlashOnly",
     R"yaml(target: http://localhost:9/
flows: {a: {steps: [{get: /}]}}
)yaml",
     ""},
    {"ValidWithTemplatesInKeys",
     R"yaml(target: http://localhost:9
flows:
  a:
    steps:
      - post: /
        json: {"{{ k }}": 1}
)yaml",
     ""},
    // monitor: (docs/monitoring.md)
    {"MonitorNotAList",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
monitor: http://localhost:9100/metrics
)yaml",
     "s.yaml:3:10: monitor is a single value; expected a list of endpoints such as [{name: node, url: http://127.0.0.1:9100/metrics}]"},
    {"MonitorWithoutUrl",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
monitor:
  - {name: node}
)yaml",
     "s.yaml:4:5: monitor entry has no url; expected e.g. url: http://127.0.0.1:9100/metrics (a Prometheus text endpoint)"},
    {"MonitorBadUrl",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
monitor:
  - ftp://localhost/metrics
)yaml",
     "s.yaml:4:5: monitor url \"ftp://localhost/metrics\": unsupported scheme 'ftp': only http:// and https:// are; expected e.g. http://127.0.0.1:9100/metrics"},
    {"MonitorBadPattern",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
monitor:
  - {url: http://localhost:9100/metrics, metrics: [node_cpu_.*, "http_(a"]}
)yaml",
     "s.yaml:4:65: metrics pattern \"http_(a\" is not valid: missing ): http_(a; expected an RE2 regular expression matching whole metric names"},
    {"MonitorIntervalTooShort",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
monitor:
  - {url: http://localhost:9100/metrics, interval: 10ms}
)yaml",
     "s.yaml:4:52: monitor interval is out of range; expected 100ms to 1h"},
    {"MonitorNamesTwice",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
monitor:
  - http://localhost:9100/metrics
  - {name: "localhost:9100", url: http://localhost:9101/metrics}
)yaml",
     "s.yaml:5:5: monitor name \"localhost:9100\" is used twice (first at s.yaml:4:5); expected distinct names (name: sets one)"},
    {"MonitorValid",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
monitor:
  - http://localhost:9100/metrics
  - {name: app, url: "https://[::1]:8443/metrics", metrics: process_.*, interval: 5s}
)yaml",
     ""},
    {"AmqpStepWithoutConnection",
     R"yaml(target: http://localhost:9
flows: {a: {steps: [{amqp.publish: {routing_key: q}}]}}
)yaml",
     "s.yaml:2:22: amqp.publish needs a connection; expected an amqp: block at the top of the file (amqp: {url: amqp://127.0.0.1:5672/})"},
    {"AmqpBadUrl",
     R"yaml(target: http://localhost:9
amqp: {url: "http://127.0.0.1:5672/"}
flows: {a: {steps: [{get: /}]}}
)yaml",
     "s.yaml:2:13: amqp url \"http://127.0.0.1:5672/\": expected amqp://[USER[:PASSWORD]@]HOST[:PORT][/VHOST]"},
    {"AmqpNoUrl",
     R"yaml(target: http://localhost:9
amqp: {heartbeat: 5s}
flows: {a: {steps: [{get: /}]}}
)yaml",
     "s.yaml:2:7: amqp has no url; expected e.g. url: amqp://guest:guest@127.0.0.1:5672/"},
    {"AmqpBadExchangeType",
     R"yaml(target: http://localhost:9
amqp:
  url: amqp://127.0.0.1/
  exchanges: [{name: orders, type: fanot}]
flows: {a: {steps: [{get: /}]}}
)yaml",
     "s.yaml:4:36: amqp exchange type \"fanot\" is unknown; expected direct, fanout, topic or headers"},
    {"AmqpBindWithoutExchange",
     R"yaml(target: http://localhost:9
amqp:
  url: amqp://127.0.0.1/
  queues: [{name: done, bind: {routing_key: done}}]
flows: {a: {steps: [{get: /}]}}
)yaml",
     "s.yaml:4:31: bind has no exchange; expected bind: {exchange: NAME, routing_key: KEY}"},
    {"AmqpPublishNowhere",
     R"yaml(target: http://localhost:9
amqp: amqp://127.0.0.1/
flows: {a: {steps: [{amqp.publish: {body: x}}]}}
)yaml",
     "s.yaml:3:36: amqp.publish has neither exchange nor routing_key; expected exchange: NAME and routing_key: KEY, or routing_key: QUEUE alone (the default exchange)"},
    {"AmqpExpectNoQueue",
     R"yaml(target: http://localhost:9
amqp: amqp://127.0.0.1/
flows: {a: {steps: [{amqp.expect: {correlation_id: "{{ corr }}"}}]}}
)yaml",
     "s.yaml:3:35: amqp.expect has no queue; expected queue: NAME (the queue the matching message arrives on)"},
    {"AmqpExpectNothingToMatch",
     R"yaml(target: http://localhost:9
amqp: amqp://127.0.0.1/
flows: {a: {steps: [{amqp.expect: {queue: done, timeout: 1s}}]}}
)yaml",
     "s.yaml:3:35: amqp.expect has nothing to match; expected one of correlation_id: \"{{ corr }}\", message_id:, header: {NAME: VALUE} or json: {$.PATH: VALUE}"},
    {"AmqpExpectTwoMatches",
     R"yaml(target: http://localhost:9
amqp: amqp://127.0.0.1/
flows: {a: {steps: [{amqp.expect: {queue: done, correlation_id: x, message_id: y}}]}}
)yaml",
     "s.yaml:3:68: amqp.expect has both correlation_id and message_id; expected one way to find the correlation id"},
    {"AmqpExpectBadJsonPath",
     R"yaml(target: http://localhost:9
amqp: amqp://127.0.0.1/
flows: {a: {steps: [{amqp.expect: {queue: done, json: {"order_id": "{{ corr }}"}}}]}}
)yaml",
     "s.yaml:3:56: amqp.expect json path \"order_id\": invalid JSON path \"order_id\" at column 1: expected '$' at the start of the path, found 'o'"},
    {"AmqpExpectsOnOneQueueDisagree",
     R"yaml(target: http://localhost:9
amqp: amqp://127.0.0.1/
flows:
  a:
    steps:
      - amqp.expect: {queue: done, correlation_id: "{{ corr }}"}
      - amqp.expect: {queue: done, header: {x-order: "{{ corr }}"}}
)yaml",
     "s.yaml:7:36: amqp.expect on queue \"done\" matches by header \"x-order\", but the expect at s.yaml:6:22 on that queue matches otherwise; expected one way per queue (each delivery is looked up once)"},
    {"AmqpStepExtraKey",
     R"yaml(target: http://localhost:9
amqp: amqp://127.0.0.1/
flows: {a: {steps: [{amqp.publish: {routing_key: q}, timeout: 1s}]}}
)yaml",
     "s.yaml:3:54: timeout does not apply to an amqp.publish step; expected name (the step's settings go in its value)"},
    {"AmqpUnknownTemplateVariable",
     R"yaml(target: http://localhost:9
amqp: amqp://127.0.0.1/
flows: {a: {steps: [{amqp.publish: {routing_key: q, correlation_id: "{{ cor }}"}}]}}
)yaml",
     "s.yaml:3:73: correlation_id uses unknown variable \"cor\" (did you mean \"corr\"?); expected a name from vars:, a data column (source.column), a name some extract: sets, or a built-in (vu, iteration, worker, uuid, random(A, B), now, now_ms, now_iso, corr); known: none"},
    {"AmqpQueueNameTemplate",
     R"yaml(target: http://localhost:9
amqp: amqp://127.0.0.1/
flows: {a: {steps: [{amqp.expect: {queue: "done.{{ vu }}", correlation_id: "{{ corr }}"}}]}}
)yaml",
     "s.yaml:3:43: queue \"done.{{ vu }}\" is a template; expected fixed text, where only {{ worker }} may appear (a queue per worker)"},
    {"AmqpPerWorkerQueueValid",
     R"yaml(target: http://localhost:9
amqp:
  url: amqp://127.0.0.1/
  queues: [{name: "done.{{ worker }}", bind: {exchange: out, routing_key: "done.{{worker}}"}}]
flows: {a: {steps: [{amqp.expect: {queue: "done.{{ worker }}", correlation_id: "{{ corr }}"}}]}}
)yaml",
     ""},
    {"AmqpValid",
     R"yaml(target: http://localhost:9
amqp:
  url: amqp://guest:guest@127.0.0.1:5672/
  heartbeat: 10s
  exchanges: [{name: orders, type: topic}]
  queues: [{name: done, bind: {exchange: orders, routing_key: "done.#"}}]
flows:
  a:
    steps:
      - amqp.publish: {exchange: orders, routing_key: done.x, correlation_id: "{{ corr }}", headers: {x-order: "{{ vu }}"}, body: '{"id": "{{ corr }}"}', persistent: true}
      - amqp.expect: {queue: done, json: {$.id: "{{ corr }}"}, contains: '"id"', timeout: 2s}
)yaml",
     ""},
};
// clang-format on

class LoaderErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(LoaderErrorTest, ReportsOneLine) {
  const ErrorCase& c = GetParam();
  std::string message;
  try {
    parse_scenario(c.yaml, "s.yaml", kDataDir);
  } catch (const ScenarioError& e) {
    message = e.what();
  }
  if (const size_t at = message.find(kDataDir); at != std::string::npos) {
    message.replace(at, kDataDir.size(), "DATA");
  }
  EXPECT_EQ(message.find('\n'), std::string::npos);
  EXPECT_EQ(message, c.message) << "ACTUAL " << c.name << " " << message;
}

// The wire codec drops snapshots beyond metrics/snapshot_limits.h, so a file
// beyond them must not load (it used to, and then no result arrived).
std::string load_error(const std::string& yaml) {
  try {
    parse_scenario(yaml, "s.yaml", kDataDir);
  } catch (const ScenarioError& e) {
    return e.what();
  }
  return "";
}

TEST(LoaderLimitsTest, FlowsBeyondWhatASnapshotCarriesAreRefused) {
  std::string yaml = "target: http://localhost:9\nflows:\n";
  for (int i = 0; i < 257; ++i)
    yaml += "  f" + std::to_string(i) + ": {steps: [{get: /}]}\n";
  EXPECT_EQ(load_error(yaml),
            "s.yaml:3:3: 257 flows; expected at most 256 (the limit of flows a worker reports each "
            "second)");
  yaml.resize(yaml.rfind("  f256"));
  EXPECT_EQ(load_error(yaml), "");
}

TEST(LoaderLimitsTest, StepsBeyondWhatASnapshotCarriesAreRefused) {
  std::string yaml = "target: http://localhost:9\nflows:\n  a:\n    steps:\n";
  for (int i = 0; i < 1024; ++i)
    yaml += "      - {name: s" + std::to_string(i) + ", get: /}\n";
  EXPECT_EQ(load_error(yaml), "");
  yaml += "      - {name: one_more, get: /}\n";
  EXPECT_EQ(load_error(yaml),
            "s.yaml:1029:9: more than 1024 steps; expected at most 1024 (the limit of step metrics "
            "a worker reports each second)");
}

TEST(LoaderLimitsTest, ChecksBeyondWhatASnapshotCarriesAreRefused) {
  auto with_checks = [](int n) {
    std::string yaml = "target: http://localhost:9\nflows:\n  a:\n    steps:\n";
    yaml += "      - get: /\n        check: {json: {";
    for (int i = 0; i < n; ++i)
      yaml += (i ? ", " : "") + fmt::format("\"$.k{}\": {{exists: true}}", i);
    return yaml + "}}\n";
  };
  EXPECT_EQ(load_error(with_checks(4096)), "");
  EXPECT_EQ(load_error(with_checks(4097)),
            "s.yaml:6:16: more than 4096 checks; expected at most 4096 (the limit of checks a "
            "worker reports each second)");
}

INSTANTIATE_TEST_SUITE_P(Cases, LoaderErrorTest, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace loader_errors_test
}  // namespace millstone::scenario

namespace millstone::scenario {
namespace loader_errors_test {

TEST(LoaderMonitorTest, EndpointsCarryTheirNamesPatternsAndIntervals) {
  const auto plan = parse_scenario(R"yaml(target: http://localhost:9
flows: {a: {steps: [{get: /}]}}
monitor:
  - http://localhost:9100/metrics
  - {name: app, url: "https://[::1]:8443/metrics", metrics: [process_.*, http_requests_total],
     interval: 5s}
)yaml",
                                   "s.yaml", kDataDir);
  ASSERT_EQ(plan->monitors.size(), 2u);
  EXPECT_EQ(plan->monitors[0].name, "localhost:9100");
  EXPECT_EQ(plan->monitors[0].url, "http://localhost:9100/metrics");
  EXPECT_TRUE(plan->monitors[0].metrics.empty());
  EXPECT_EQ(plan->monitors[0].interval_us, 1'000'000);
  EXPECT_EQ(plan->monitors[0].location, "s.yaml:4:5");
  EXPECT_EQ(plan->monitors[1].name, "app");
  EXPECT_EQ(plan->monitors[1].metrics,
            (std::vector<std::string>{"process_.*", "http_requests_total"}));
  EXPECT_EQ(plan->monitors[1].interval_us, 5'000'000);
}

}  // namespace loader_errors_test
}  // namespace millstone::scenario
