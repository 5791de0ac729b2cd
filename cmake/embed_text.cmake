# Writes INPUT as a C++ string constant (kBuiltinMockYaml) to OUTPUT.
file(READ ${INPUT} content HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${content}")
file(WRITE ${OUTPUT}
  "// Generated from ${INPUT}; do not edit.\n"
  "namespace millstone::cli {\n"
  "static const char kBytes[] = {${bytes} 0x00};\n"
  "extern const char* const kBuiltinMockYaml = kBytes;\n"
  "}  // namespace millstone::cli\n")
