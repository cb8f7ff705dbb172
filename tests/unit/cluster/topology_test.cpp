#include "bignlp/cluster/topology.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "bignlp/core/error.h"

namespace bignlp::cluster {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

void put(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text << "\n";
}

void device(const fs::path& root, const std::string& bus, const std::string& vendor, const std::string& cls, int numa) {
  const fs::path d = root / "sys/bus/pci/devices" / bus;
  put(d / "vendor", vendor);
  put(d / "class", cls);
  put(d / "numa_node", std::to_string(numa));
  put(d / "current_link_speed", "16.0 GT/s PCIe");
  put(d / "current_link_width", "16");
}

class Topology : public ::testing::Test {
 protected:
  fs::path root = fs::temp_directory_path() / ("bignlp-topo-" + std::to_string(::getpid()));
  void TearDown() override { fs::remove_all(root); }
};

TEST_F(Topology, PairsGpusWithNicsPerNumaNodeInBusOrder) {
  // Two NUMA nodes, two GPUs and two InfiniBand NICs each, listed out of order; plus devices to skip.
  device(root, "0002:00:00.0", "0x10de", "0x030200", 0);
  device(root, "0001:00:00.0", "0x10de", "0x030200", 0);
  device(root, "0102:00:00.0", "0x15b3", "0x020700", 0);
  device(root, "0101:00:00.0", "0x15b3", "0x020700", 0);
  device(root, "0003:00:00.0", "0x10de", "0x030200", 1);
  device(root, "0103:00:00.0", "0x15b3", "0x020700", 1);
  device(root, "0000:00:01.0", "0x1af4", "0x020000", 0);  // ethernet: not InfiniBand
  device(root, "0000:00:02.0", "0x1234", "0x030000", 0);  // a display adapter of another vendor
  put(root / "sys/devices/system/node/node0/cpumap", "0000ffff");
  put(root / "sys/devices/system/node/node1/cpumap", "ffff0000");
  put(root / "proc/cpuinfo", "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 23\nmodel\t\t: 49\n");
  const auto topo = read_pci_topology(root);
  EXPECT_EQ(topo.gpu_count(), 3u);
  EXPECT_EQ(topo.nic_count(), 3u);
  const std::string xml = topology_xml(topo);
  EXPECT_THAT(xml, HasSubstr("<system version=\"1\">"));
  EXPECT_THAT(xml, HasSubstr("<cpu numaid=\"0\" affinity=\"0000ffff\""));
  EXPECT_THAT(xml, HasSubstr("vendor=\"AuthenticAMD\" familyid=\"23\" modelid=\"49\""));
  // GPU 0001 and NIC 0101 share the first bridge, 0002 and 0102 the second.
  EXPECT_THAT(xml, HasSubstr("busid=\"ffff:ff:00.0\" class=\"0x060400\" link_speed=\"16.0 GT/s PCIe\" link_width=\"16\">\n"
                             "      <pci busid=\"0001:00:00.0\" class=\"0x030200\""));
  EXPECT_THAT(xml, HasSubstr("<pci busid=\"0001:00:00.0\" class=\"0x030200\" link_speed=\"16.0 GT/s PCIe\" "
                             "link_width=\"16\"/>\n      <pci busid=\"0101:00:00.0\" class=\"0x020700\""));
  EXPECT_THAT(xml, HasSubstr("<pci busid=\"ffff:ff:01.0\" class=\"0x060400\" link_speed=\"16.0 GT/s PCIe\" "
                             "link_width=\"16\">\n      <pci busid=\"0002:00:00.0\""));
  EXPECT_THAT(xml, HasSubstr("<cpu numaid=\"1\" affinity=\"ffff0000\""));
  EXPECT_EQ(xml.find("0000:00:01.0"), std::string::npos);
  EXPECT_EQ(xml.find("0000:00:02.0"), std::string::npos);
}

TEST_F(Topology, NoGpuIsAnError) {
  device(root, "0101:00:00.0", "0x15b3", "0x020700", 0);
  EXPECT_THROW(read_pci_topology(root), RuntimeError);
  EXPECT_THROW(read_pci_topology(root / "missing"), IoError);
}

}  // namespace
}  // namespace bignlp::cluster
