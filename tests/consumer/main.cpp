// A user's program: parse a shipped space from the installed package and print its size and
// the cost of one sampled architecture.
#include <cstdio>

#include <nasforge/costs.h>
#include <nasforge/search_space.h>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  auto space = nasforge::SearchSpace::from_file(argv[1]);
  nasforge::Rng rng(3);
  auto arch = space.sample(rng);
  auto costs = nasforge::analytic_costs(space.resolve(arch));
  std::printf("%s size %s, %s has %lld params\n", space.name().c_str(), space.size().exact.c_str(),
              space.to_native(arch).c_str(), static_cast<long long>(costs.params));
  return 0;
}
