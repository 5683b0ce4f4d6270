#include "nasforge/dataset.h"

#include <algorithm>
#include <cstring>
#include <fstream>

#include <fmt/core.h>
#include <zlib.h>

#include "nasforge/error.h"
#include "nasforge/random.h"

namespace nasforge {
namespace {

// The whole file, gunzipped when it starts with the gzip magic.
std::vector<std::uint8_t> read_maybe_gzip(const std::string& path) {
  std::ifstream probe(path, std::ios::binary);
  if (!probe) throw NotFound(fmt::format("{}: cannot open", path));
  probe.close();
  gzFile f = gzopen(path.c_str(), "rb");  // reads plain files transparently too
  if (!f) throw NotFound(fmt::format("{}: cannot open", path));
  std::vector<std::uint8_t> out;
  std::uint8_t buf[1 << 16];
  for (;;) {
    int n = gzread(f, buf, sizeof buf);
    if (n < 0) {
      int err = 0;
      std::string msg = gzerror(f, &err);
      gzclose(f);
      throw InvalidArgument(fmt::format("{}: corrupt gzip data ({})", path, msg));
    }
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
    if (out.size() > (std::size_t{1} << 32)) {
      gzclose(f);
      throw InvalidArgument(fmt::format("{}: larger than 4 GiB, not an IDX file", path));
    }
  }
  gzclose(f);
  return out;
}

std::uint32_t be32(const std::vector<std::uint8_t>& d, std::size_t off) {
  return (std::uint32_t{d[off]} << 24) | (std::uint32_t{d[off + 1]} << 16) |
         (std::uint32_t{d[off + 2]} << 8) | d[off + 3];
}

}  // namespace

ImageSet read_idx(const std::string& images_path, const std::string& labels_path) {
  auto img = read_maybe_gzip(images_path);
  auto lab = read_maybe_gzip(labels_path);
  if (img.size() < 16 || be32(img, 0) != 0x00000803) {
    throw InvalidArgument(fmt::format("{}: expected an IDX image file (magic 0x00000803), found {}",
                                      images_path, img.size() < 4 ? std::string("a file of ") + std::to_string(img.size()) + " bytes"
                                                                  : fmt::format("magic 0x{:08x}", be32(img, 0))));
  }
  if (lab.size() < 8 || be32(lab, 0) != 0x00000801) {
    throw InvalidArgument(fmt::format("{}: expected an IDX label file (magic 0x00000801), found {}",
                                      labels_path, lab.size() < 4 ? std::string("a file of ") + std::to_string(lab.size()) + " bytes"
                                                                  : fmt::format("magic 0x{:08x}", be32(lab, 0))));
  }
  const std::uint64_t n = be32(img, 4), h = be32(img, 8), w = be32(img, 12);
  if (h == 0 || w == 0 || h > 65536 || w > 65536 || img.size() - 16 != n * h * w) {
    throw InvalidArgument(fmt::format("{}: header says {} images of {}x{} ({} bytes), file has {} data bytes",
                                      images_path, n, h, w, n * h * w, img.size() - 16));
  }
  const std::uint64_t nl = be32(lab, 4);
  if (lab.size() - 8 != nl) {
    throw InvalidArgument(fmt::format("{}: header says {} labels, file has {}", labels_path, nl, lab.size() - 8));
  }
  if (nl != n) {
    throw InvalidArgument(fmt::format("{} has {} images but {} has {} labels", images_path, n, labels_path, nl));
  }
  ImageSet s;
  s.channels = 1;
  s.height = static_cast<std::int64_t>(h);
  s.width = static_cast<std::int64_t>(w);
  s.pixels.assign(img.begin() + 16, img.end());
  s.labels.assign(lab.begin() + 8, lab.end());
  s.num_classes = s.labels.empty() ? 0 : 1 + *std::max_element(s.labels.begin(), s.labels.end());
  return s;
}

ImageSet load_fashion_mnist(bool train, const std::string& dir) {
  const std::string prefix = dir + (train ? "/train" : "/t10k");
  ImageSet s;
  try {
    s = read_idx(prefix + "-images-idx3-ubyte.gz", prefix + "-labels-idx1-ubyte.gz");
  } catch (const NotFound& e) {
    throw NotFound(fmt::format("{} (Fashion-MNIST ships as Debian's dataset-fashion-mnist package)", e.what()));
  }
  const std::int64_t expect = train ? 60000 : 10000;
  if (s.size() != expect || s.height != 28 || s.width != 28 || s.num_classes != 10) {
    throw InvalidArgument(fmt::format("{}: expected {} images of 28x28 in 10 classes, found {} of {}x{} in {}",
                                      prefix, expect, s.size(), s.height, s.width, s.num_classes));
  }
  return s;
}

Split train_valid_split(std::int64_t n, double valid_fraction, std::uint64_t seed) {
  NASFORGE_CHECK(n >= 0, "train_valid_split: expected n >= 0, got {}", n);
  NASFORGE_CHECK(valid_fraction >= 0 && valid_fraction <= 1,
                 "train_valid_split: expected valid_fraction in [0, 1], got {}", valid_fraction);
  std::vector<std::int64_t> idx(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) idx[i] = i;
  Rng rng(seed);
  for (std::int64_t i = n - 1; i > 0; --i) {  // Fisher-Yates with the portable Rng
    std::swap(idx[i], idx[rng.uniform(static_cast<std::uint64_t>(i) + 1)]);
  }
  auto nv = static_cast<std::int64_t>(static_cast<double>(n) * valid_fraction);
  Split s;
  s.valid.assign(idx.begin(), idx.begin() + nv);
  s.train.assign(idx.begin() + nv, idx.end());
  std::sort(s.valid.begin(), s.valid.end());
  std::sort(s.train.begin(), s.train.end());
  return s;
}

}  // namespace nasforge
