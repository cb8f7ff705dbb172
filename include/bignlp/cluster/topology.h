// The NCCL topology file (NCCL_TOPO_FILE, docs/cluster_tools.md; format: NCCL src/graph/topo.cc,
// reference formats.md §9.1): `<system version="1">` holding one `<cpu numaid affinity arch vendor
// familyid modelid>` per NUMA node, each holding `<pci busid class link_speed link_width>`
// entries. Cloud VMs (Azure NDv4/NDm A100 v4) show NCCL a flat, virtualized PCI tree, so NCCL
// cannot tell which InfiniBand NIC sits next to which GPU; the file restores it: on each NUMA node
// the GPUs and the NICs (both in PCI bus order) are paired, GPU k with NIC k, under one virtual
// bridge (busid ffff:ff:NN.0), as the vendor's topology files do.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace bignlp::cluster {

struct PciDevice {
  std::string busid;       ///< "0001:00:00.0"
  std::string pci_class;   ///< "0x030200" (GPU), "0x020700" (InfiniBand)
  std::string link_speed;  ///< "16.0 GT/s PCIe" as sysfs prints it (NCCL reads the leading number)
  std::string link_width;  ///< "16"
};

struct CpuNode {
  int numaid = 0;
  std::string affinity;  ///< cpumap of the NUMA node ("0000ffff,0000ffff")
  std::string arch, vendor, familyid, modelid;
  std::vector<PciDevice> gpus, nics;
};

struct PciTopology {
  std::vector<CpuNode> cpus;  ///< NUMA nodes that hold a GPU or a NIC, by numaid
  std::size_t gpu_count() const;
  std::size_t nic_count() const;
};

/// NVIDIA GPUs (vendor 0x10de, class 0x03xxxx) and InfiniBand NICs (class 0x0207xx) of
/// <root>/sys/bus/pci/devices, grouped by their numa_node (a device without one counts as node 0),
/// with each node's cpumap and the CPU identity of <root>/proc/cpuinfo. Throws IoError when the
/// PCI folder cannot be read, RuntimeError when there is no GPU.
PciTopology read_pci_topology(const std::filesystem::path& root);

/// The topology file's text.
std::string topology_xml(const PciTopology& topo);

}  // namespace bignlp::cluster
