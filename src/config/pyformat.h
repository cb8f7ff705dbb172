// Python-compatible text forms used by the config library (internal header).
//
// OmegaConf converts values with Python's str()/repr() (string interpolation, error messages) and
// decides YAML quoting with Python's int()/float() parsers. These functions reproduce exactly those
// rules for the value kinds a ConfigNode can hold.
#pragma once

#include <string>
#include <string_view>

namespace bignlp::config {

class ConfigNode;

namespace py {

/// repr(float) / str(float): shortest round-trip digits, "1e-05", "1e+16", "1000000000000000.0",
/// "inf", "-inf", "nan", "-0.0".
std::string float_repr(double value);
/// repr(str): quotes chosen like CPython ('...' unless the text has ' and no "), escapes \\ \n \r \t
/// and non-printable ASCII as \xNN.
std::string str_repr(std::string_view text);
/// Would Python's int(text) succeed? (surrounding whitespace, sign, single '_' between digits)
bool is_int(std::string_view text);
/// Would Python's float(text) succeed? (also inf/infinity/nan in any case)
bool is_float(std::string_view text);
/// Parses what Python's float() accepts (callers check is_float first).
double parse_float(std::string_view text);

/// str(value) as OmegaConf's string interpolation produces it.
std::string str(const ConfigNode& node);
/// repr(value) inside containers: strings quoted, others like str().
std::string repr(const ConfigNode& node);

}  // namespace py
}  // namespace bignlp::config
