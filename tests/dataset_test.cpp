// IDX reading (raw and gzip), corrupt-file errors, Fashion-MNIST, seeded splits.
#include "nasforge/dataset.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <zlib.h>

#include "nasforge/error.h"

namespace nasforge {
namespace {

std::vector<std::uint8_t> idx_images(std::uint32_t n, std::uint32_t h, std::uint32_t w) {
  std::vector<std::uint8_t> d = {0, 0, 8, 3};
  for (std::uint32_t v : {n, h, w}) {
    for (int s = 24; s >= 0; s -= 8) d.push_back(static_cast<std::uint8_t>(v >> s));
  }
  for (std::uint32_t i = 0; i < n * h * w; ++i) d.push_back(static_cast<std::uint8_t>(i * 7));
  return d;
}

std::vector<std::uint8_t> idx_labels(std::vector<std::uint8_t> labels) {
  std::vector<std::uint8_t> d = {0, 0, 8, 1};
  auto n = static_cast<std::uint32_t>(labels.size());
  for (int s = 24; s >= 0; s -= 8) d.push_back(static_cast<std::uint8_t>(n >> s));
  d.insert(d.end(), labels.begin(), labels.end());
  return d;
}

std::string write(const std::string& name, const std::vector<std::uint8_t>& bytes, bool gzip) {
  auto p = (std::filesystem::temp_directory_path() / ("nasforge_dataset_test_" + name)).string();
  if (gzip) {
    gzFile f = gzopen(p.c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
  } else {
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                             static_cast<std::streamsize>(bytes.size()));
  }
  return p;
}

std::string error_of(const std::string& images, const std::string& labels) {
  try {
    (void)read_idx(images, labels);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(ReadIdx, ReadsRawAndGzipFilesAlike) {
  auto img = idx_images(3, 2, 4);
  auto lab = idx_labels({2, 0, 1});
  for (bool gz : {false, true}) {
    auto s = read_idx(write("img", img, gz), write("lab", lab, gz));
    EXPECT_EQ(s.size(), 3);
    EXPECT_EQ(s.height, 2);
    EXPECT_EQ(s.width, 4);
    EXPECT_EQ(s.num_classes, 3);
    ASSERT_EQ(s.pixels.size(), 24u);
    EXPECT_EQ(s.pixels[5], 35);
    EXPECT_EQ(s.labels, (std::vector<std::uint8_t>{2, 0, 1}));
  }
}

TEST(ReadIdx, CorruptFilesNameTheFileAndTheProblem) {
  auto lab = write("lab3", idx_labels({1, 2, 3}), false);
  auto bad_magic = idx_images(3, 2, 2);
  bad_magic[3] = 1;
  EXPECT_NE(error_of(write("magic", bad_magic, false), lab).find("expected an IDX image file (magic 0x00000803), found magic 0x00000801"),
            std::string::npos);
  auto truncated = idx_images(3, 2, 2);
  truncated.resize(truncated.size() - 1);
  std::string t = write("trunc", truncated, true);
  EXPECT_NE(error_of(t, lab).find(t + ": header says 3 images of 2x2 (12 bytes), file has 11 data bytes"), std::string::npos);
  EXPECT_NE(error_of(write("img2", idx_images(2, 2, 2), false), lab).find("has 2 images but"), std::string::npos);
  EXPECT_THROW((void)read_idx("/nonexistent/images.gz", lab), NotFound);
}

TEST(FashionMnist, LoadsTheDebianPackage) {
  if (!std::filesystem::exists(kFashionMnistDir)) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  auto train = load_fashion_mnist(true);
  auto test = load_fashion_mnist(false);
  EXPECT_EQ(train.size(), 60000);
  EXPECT_EQ(test.size(), 10000);
  EXPECT_EQ(train.num_classes, 10);
  std::vector<int> counts(10);
  for (auto l : train.labels) ++counts[l];
  for (int c : counts) EXPECT_EQ(c, 6000);  // Fashion-MNIST is balanced
}

TEST(TrainValidSplit, IsSeededDisjointAndComplete) {
  auto a = train_valid_split(1000, 0.25, 7), b = train_valid_split(1000, 0.25, 7), c = train_valid_split(1000, 0.25, 8);
  EXPECT_EQ(a.valid, b.valid);
  EXPECT_NE(a.valid, c.valid);
  EXPECT_EQ(a.valid.size(), 250u);
  EXPECT_EQ(a.train.size(), 750u);
  std::set<std::int64_t> all(a.train.begin(), a.train.end());
  all.insert(a.valid.begin(), a.valid.end());
  EXPECT_EQ(all.size(), 1000u);
  EXPECT_THROW((void)train_valid_split(10, 1.5, 0), InvalidArgument);
}

}  // namespace nasforge
