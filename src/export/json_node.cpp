#include "bignlp/export/json_node.h"

namespace bignlp::exporting {

config::ConfigNode json_to_node(const nlohmann::json& j) {
  using config::ConfigNode;
  switch (j.type()) {
    case nlohmann::json::value_t::null: return ConfigNode::null_value();
    case nlohmann::json::value_t::boolean: return ConfigNode::boolean(j.get<bool>());
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: return ConfigNode::integer(j.get<std::int64_t>());
    case nlohmann::json::value_t::number_float: return ConfigNode::floating(j.get<double>());
    case nlohmann::json::value_t::string: return ConfigNode::string(j.get<std::string>());
    case nlohmann::json::value_t::array: {
      ConfigNode n = ConfigNode::list();
      for (const auto& x : j) n.push_back(json_to_node(x));
      return n;
    }
    case nlohmann::json::value_t::object: {
      ConfigNode n = ConfigNode::dict();
      for (auto it = j.begin(); it != j.end(); ++it) n.set(it.key(), json_to_node(it.value()));
      return n;
    }
    default: return ConfigNode::null_value();
  }
}

nlohmann::json node_to_json(const config::ConfigNode& n) {
  switch (n.kind()) {
    case config::NodeKind::kNull: return nullptr;
    case config::NodeKind::kBool: return n.as_bool();
    case config::NodeKind::kInt: return n.as_int();
    case config::NodeKind::kFloat: return n.as_double();
    case config::NodeKind::kString: return n.as_string();
    case config::NodeKind::kMissing: return "???";
    case config::NodeKind::kList: {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& c : n.children()) a.push_back(node_to_json(c));
      return a;
    }
    case config::NodeKind::kDict: {
      nlohmann::json o = nlohmann::json::object();
      for (std::size_t i = 0; i < n.size(); ++i) o[n.key_at(i)] = node_to_json(n.child_at(i));
      return o;
    }
  }
  return nullptr;
}

}  // namespace bignlp::exporting
