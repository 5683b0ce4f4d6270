#pragma once
/// \file serialize.h
/// Saving and loading networks.
///
/// Weights are written with `torch::pickle_save` as a dictionary {name: tensor} of every
/// parameter and buffer (the names of `named_parameters()` / `named_buffers()`): the format of
/// Python's `torch.save(state_dict)`, so `torch.load("weights.pt")` reads it in Python
/// (`tests/torch/serialize_test.cpp` checks this with Debian's python3-torch when installed).
///
/// A sub-network directory holds `arch.json` (the space's name and fingerprint, the
/// architecture as option indices, named JSON and native string) and `weights.pt`.
///
/// ```cpp
/// nasforge::save_subnetwork("out/sub", space, arch, supernet->extract(arch));
/// auto [arch2, net] = nasforge::load_subnetwork("out/sub", space);   // in another process
/// ```

#include <string>

#include "nasforge/architecture.h"
#include "nasforge/search_space.h"
#include "nasforge/torch/network.h"

namespace nasforge {

/// Writes every parameter and buffer of `net` to `path` (pickle format, readable by Python's
/// torch.load). The file is written to `path.tmp` and renamed, so a crash never leaves a torn
/// file. Throws InvalidArgument when it cannot be written.
void save_weights(const ::torch::nn::Module& net, const std::string& path);

/// Loads weights written by save_weights (or by Python's `torch.save(model.state_dict())` with
/// the same names) into `net`, which must have exactly those names and shapes. Throws NotFound
/// when the file cannot be read and InvalidArgument naming the first missing, unexpected or
/// mis-shaped tensor.
void load_weights(::torch::nn::Module& net, const std::string& path);

/// Writes `dir/arch.json` and `dir/weights.pt` (creating `dir`).
void save_subnetwork(const std::string& dir, const SearchSpace& space, const Architecture& arch, const Network& net);

/// A sub-network read back from disk.
struct Subnetwork {
  Architecture arch;
  Network network{nullptr};
};

/// Reads a directory written by save_subnetwork: rebuilds the network of the architecture in
/// `space` and loads its weights (in eval mode). Throws InvalidArgument when the directory was
/// written for another space (the fingerprints differ) and NotFound when a file is missing.
Subnetwork load_subnetwork(const std::string& dir, const SearchSpace& space);

}  // namespace nasforge
