// Conversions between nlohmann::json and config::ConfigNode (YAML emission of JSON-held configs).
#pragma once

#include <nlohmann/json.hpp>

#include "bignlp/config/node.h"

namespace bignlp::exporting {

/// JSON -> ConfigNode (objects keep nlohmann's key order).
config::ConfigNode json_to_node(const nlohmann::json& j);
/// ConfigNode -> JSON (MISSING becomes "???").
nlohmann::json node_to_json(const config::ConfigNode& n);

}  // namespace bignlp::exporting
