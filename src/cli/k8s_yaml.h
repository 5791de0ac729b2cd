#pragma once
// YAML text for Kubernetes manifests (`millstone k8s render`): a tree built as
// ordered JSON (keys keep the order they were added in), written in block
// style. Strings are written plain only where every YAML 1.1 and 1.2 reader
// (kubectl's go-yaml, PyYAML) reads them back as the same string; otherwise
// double-quoted, or as a literal block (`|`) when multi-line text can be one.
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace millstone::cli {

// Whether `text` is UTF-8 whose every character a YAML stream may hold (tab,
// newline and printable characters: no other C0 control, DEL, C1 control,
// surrogate or U+FFFE/U+FFFF). A ConfigMap's `data` must be such text; other
// bytes go to `binaryData` as base64.
bool yaml_printable(std::string_view text);

// One YAML document (no leading `---`), ending with a newline.
std::string to_yaml(const nlohmann::ordered_json& document);

}  // namespace millstone::cli
