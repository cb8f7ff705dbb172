#include "bignlp/cluster/topology.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"

namespace bignlp::cluster {
namespace {

namespace fs = std::filesystem;

std::string first_line(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  if (!in || !std::getline(in, line)) return "";
  return std::string(trim(line));
}

std::string attr(std::string_view text) {  // XML attribute value
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// "0x030200" from sysfs' "0x030200"; class codes are 24 bits.
bool is_gpu(const std::string& vendor, const std::string& cls) { return vendor == "0x10de" && cls.starts_with("0x03"); }
bool is_ib_nic(const std::string& cls) { return cls.starts_with("0x0207"); }

}  // namespace

std::size_t PciTopology::gpu_count() const {
  std::size_t n = 0;
  for (const auto& c : cpus) n += c.gpus.size();
  return n;
}

std::size_t PciTopology::nic_count() const {
  std::size_t n = 0;
  for (const auto& c : cpus) n += c.nics.size();
  return n;
}

PciTopology read_pci_topology(const fs::path& root) {
  const fs::path pci = root / "sys/bus/pci/devices";
  std::error_code ec;
  fs::directory_iterator it(pci, ec);
  if (ec) throw IoError(fmt::format("cannot read the PCI devices in '{}': {}", pci.string(), ec.message()));
  std::map<int, CpuNode> nodes;
  for (const auto& entry : it) {
    const std::string busid = entry.path().filename().string();
    const std::string vendor = first_line(entry.path() / "vendor");
    const std::string cls = first_line(entry.path() / "class");
    const bool gpu = is_gpu(vendor, cls);
    if (!gpu && !is_ib_nic(cls)) continue;
    int numa = 0;
    if (const std::string n = first_line(entry.path() / "numa_node"); !n.empty() && n != "-1") numa = std::stoi(n);
    PciDevice d{busid, cls, first_line(entry.path() / "current_link_speed"), first_line(entry.path() / "current_link_width")};
    CpuNode& node = nodes[numa];
    node.numaid = numa;
    (gpu ? node.gpus : node.nics).push_back(std::move(d));
  }
  // CPU identity (the same on every node of a machine).
  std::string vendor, family, model;
  {
    std::ifstream in(root / "proc/cpuinfo");
    std::string line;
    while (std::getline(in, line) && (vendor.empty() || family.empty() || model.empty())) {
      const auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      const std::string key(trim(std::string_view(line).substr(0, colon)));
      const std::string value(trim(std::string_view(line).substr(colon + 1)));
      if (key == "vendor_id" && vendor.empty()) vendor = value;
      if (key == "cpu family" && family.empty()) family = value;
      if (key == "model" && model.empty()) model = value;
    }
  }
  PciTopology topo;
  for (auto& [numa, node] : nodes) {
    auto by_bus = [](const PciDevice& x, const PciDevice& y) { return x.busid < y.busid; };
    std::sort(node.gpus.begin(), node.gpus.end(), by_bus);
    std::sort(node.nics.begin(), node.nics.end(), by_bus);
    node.affinity = first_line(root / fmt::format("sys/devices/system/node/node{}/cpumap", numa));
    node.arch = "x86_64";
    if (const std::string m = first_line(root / "proc/sys/kernel/arch"); !m.empty()) node.arch = m;
    node.vendor = vendor;
    node.familyid = family;
    node.modelid = model;
    topo.cpus.push_back(std::move(node));
  }
  if (topo.gpu_count() == 0) {
    throw RuntimeError(fmt::format("no NVIDIA GPU among the PCI devices of '{}': the topology file describes a GPU "
                                   "node; run it on one (sbatch -N 1 ... or the cluster_validation stage's topology job)",
                                   pci.string()));
  }
  return topo;
}

std::string topology_xml(const PciTopology& topo) {
  std::ostringstream x;
  x << "<system version=\"1\">\n";
  int bridge = 0;
  auto dev = [&](const PciDevice& d, const char* indent) {
    x << fmt::format("{}<pci busid=\"{}\" class=\"{}\" link_speed=\"{}\" link_width=\"{}\"/>\n", indent, attr(d.busid),
                     attr(d.pci_class), attr(d.link_speed), attr(d.link_width));
  };
  for (const auto& c : topo.cpus) {
    x << fmt::format("  <cpu numaid=\"{}\" affinity=\"{}\" arch=\"{}\" vendor=\"{}\" familyid=\"{}\" modelid=\"{}\">\n",
                     c.numaid, attr(c.affinity), attr(c.arch), attr(c.vendor), attr(c.familyid), attr(c.modelid));
    const std::size_t n = std::max(c.gpus.size(), c.nics.size());
    for (std::size_t k = 0; k < n; ++k) {
      // The bridge gets the fastest link of what it holds.
      const PciDevice& ref = k < c.gpus.size() ? c.gpus[k] : c.nics[k];
      x << fmt::format("    <pci busid=\"ffff:ff:{:02x}.0\" class=\"0x060400\" link_speed=\"{}\" link_width=\"{}\">\n",
                       bridge++, attr(ref.link_speed), attr(ref.link_width));
      if (k < c.gpus.size()) dev(c.gpus[k], "      ");
      if (k < c.nics.size()) dev(c.nics[k], "      ");
      x << "    </pci>\n";
    }
    x << "  </cpu>\n";
  }
  x << "</system>\n";
  return x.str();
}

}  // namespace bignlp::cluster
