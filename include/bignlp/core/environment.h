// The process environment as data.
//
// Programs read their environment variables once, in main(), and pass what they need down as
// values (STYLE: environment variables are read in one place); libraries take maps, never call
// getenv. This is the one helper that turns `environ` into such a map.
#pragma once

#include <map>
#include <string>

namespace bignlp {

/// Every variable of the process environment, name -> value. Call from main() only.
std::map<std::string, std::string> process_environment();

}  // namespace bignlp
