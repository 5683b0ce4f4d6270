#include "nasforge/pareto.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <iterator>
#include <limits>
#include <map>
#include <numeric>
#include <utility>

#include "nasforge/error.h"
#include "nasforge/random.h"

namespace nasforge {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr std::size_t kNotFirst = std::numeric_limits<std::size_t>::max();

// Every point of `points` (called `what` in messages) has `dims` objectives and no NaN.
void check_points(const std::vector<ObjectivePoint>& points, std::size_t dims, const char* what) {
  for (std::size_t i = 0; i < points.size(); ++i) {
    NASFORGE_CHECK(points[i].size() == dims,
                   "expected {} objectives per point, found {} in point {} of {}", dims,
                   points[i].size(), i, what);
    for (std::size_t j = 0; j < dims; ++j) {
      NASFORGE_CHECK(!std::isnan(points[i][j]),
                     "expected numbers, found NaN in objective {} of point {} of {}", j, i, what);
    }
  }
}

// The number of objectives of a non-empty set of points, checked to be at least 1.
std::size_t objectives_of(const std::vector<ObjectivePoint>& points, const char* what) {
  const std::size_t m = points.front().size();
  NASFORGE_CHECK(m > 0, "expected at least one objective per point, found 0 in point 0 of {}",
                 what);
  return m;
}

void check_reference(const ObjectivePoint& reference) {
  NASFORGE_CHECK(!reference.empty(),
                 "expected a reference point with at least one objective, found an empty one");
  for (std::size_t j = 0; j < reference.size(); ++j) {
    NASFORGE_CHECK(!std::isnan(reference[j]),
                   "expected numbers in the reference point, found NaN in objective {}", j);
  }
}

// The points sorted lexicographically with duplicates merged. ENS relies on the order: a point
// can only be dominated by points before it, so each is placed once, after all its dominators.
struct SortedUnique {
  std::vector<double> rows;              // the distinct points, m values each, ascending
  std::vector<std::size_t> order;        // indices into the input, lexicographic (ties by index)
  std::vector<std::size_t> group_begin;  // row r is order[group_begin[r] .. group_begin[r + 1])
  std::size_t count() const { return group_begin.size() - 1; }
};

SortedUnique sort_unique(const std::vector<ObjectivePoint>& points, std::size_t m) {
  const std::size_t n = points.size();
  // A flat copy: the comparisons of the sort and of ENS then stay in one cache-friendly array.
  std::vector<double> flat(n * m);
  for (std::size_t i = 0; i < n; ++i) std::copy(points[i].begin(), points[i].end(), &flat[i * m]);

  SortedUnique s;
  s.order.resize(n);
  std::iota(s.order.begin(), s.order.end(), std::size_t{0});
  std::sort(s.order.begin(), s.order.end(), [&](std::size_t a, std::size_t b) {
    const double* pa = &flat[a * m];
    const double* pb = &flat[b * m];
    for (std::size_t j = 0; j < m; ++j) {
      if (pa[j] < pb[j]) return true;
      if (pb[j] < pa[j]) return false;
    }
    return a < b;
  });

  s.rows.reserve(n * m);
  s.group_begin.reserve(n + 1);
  const double* last = nullptr;
  for (std::size_t k = 0; k < n; ++k) {
    const double* p = &flat[s.order[k] * m];
    if (last == nullptr || !std::equal(p, p + m, last)) {
      s.group_begin.push_back(k);
      s.rows.insert(s.rows.end(), p, p + m);
    }
    last = p;
  }
  s.group_begin.push_back(n);
  return s;
}

// The first front (of `count`; only front 0 is searched when `first_only`) that does not
// dominate the point, by binary search: fronts are ordered, so if front k dominates the point
// so does every earlier one (ENS-BS).
template <typename Dominates>
std::size_t first_undominating_front(std::size_t count, bool first_only, Dominates dominates) {
  std::size_t lo = 0, hi = first_only ? std::min<std::size_t>(count, 1) : count;
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (dominates(mid)) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// True when a member of `front` (objectives 1..m-1 of each member, `d` values per member)
// dominates `p` (its objectives 1..m-1). Every member precedes p lexicographically and differs
// from it, so "no worse in objectives 1..m-1" is enough. Newest members first: they are the
// nearest in lexicographic order, hence the likeliest dominators (as in ENS).
template <std::size_t kDims>  // 0: d known at run time only
bool front_dominates(const std::vector<double>& front, const double* p, std::size_t d) {
  const std::size_t dd = kDims != 0 ? kDims : d;
  for (std::size_t off = front.size(); off > 0;) {
    off -= dd;
    const double* q = front.data() + off;
    bool no_worse = true;
    for (std::size_t j = 0; j < dd; ++j) {
      if (q[j] > p[j]) {
        no_worse = false;
        break;
      }
    }
    if (no_worse) return true;
  }
  return false;
}

// ENS-BS for 4 or more objectives: each distinct point, in lexicographic order, goes to the
// first front none of whose members dominates it. "Front k dominates p" implies "front k - 1
// dominates p" (each member of front k has a dominator in front k - 1), so the first such
// front is found by binary search. With `first_only`, only front 0 is kept and every other
// point gets kNotFirst.
template <std::size_t kDims>
std::vector<std::size_t> ranks_ens(const SortedUnique& s, std::size_t m, bool first_only) {
  const std::size_t d = m - 1;
  std::vector<std::vector<double>> fronts;
  std::vector<std::size_t> rank(s.count());
  for (std::size_t r = 0; r < s.count(); ++r) {
    const double* p = &s.rows[r * m + 1];
    const std::size_t lo = first_undominating_front(fronts.size(), first_only,
                                                    [&](std::size_t f) { return front_dominates<kDims>(fronts[f], p, d); });
    if (first_only && lo > 0) {
      rank[r] = kNotFirst;
      continue;
    }
    if (lo == fronts.size()) fronts.emplace_back();
    fronts[lo].insert(fronts[lo].end(), p, p + d);
    rank[r] = lo;
  }
  return rank;
}

// Two objectives in O(N log N): within a front (lexicographic order, mutually non-dominated)
// objective 1 strictly decreases, so the last member placed has the front's smallest objective
// 1 and front k dominates a later distinct point p iff that value is <= p[1]. These last
// values are non-decreasing in k, so the first front that does not dominate p is an
// upper_bound.
std::vector<std::size_t> ranks_2d(const SortedUnique& s, bool first_only) {
  std::vector<double> last;
  std::vector<std::size_t> rank(s.count());
  for (std::size_t r = 0; r < s.count(); ++r) {
    const double y = s.rows[r * 2 + 1];
    const auto k =
        static_cast<std::size_t>(std::upper_bound(last.begin(), last.end(), y) - last.begin());
    if (first_only && k > 0) {
      rank[r] = kNotFirst;
      continue;
    }
    if (k == last.size()) {
      last.push_back(y);
    } else {
      last[k] = y;
    }
    rank[r] = k;
  }
  return rank;
}

// Three objectives: a front dominates a later distinct point p iff a member q has q[1] <= p[1]
// and q[2] <= p[2]. Only the members whose pair (q[1], q[2]) no other member's pair dominates
// matter; they form a staircase (q[1] ascending, q[2] strictly descending) where the query is
// one binary search, so ENS-BS costs O(N log N log F) here instead of scanning whole fronts.
using Staircase = std::vector<std::pair<double, double>>;

bool staircase_dominates(const Staircase& st, double y, double z) {
  // The member with the largest q[1] <= y has the smallest q[2] among those with q[1] <= y.
  auto after =
      std::upper_bound(st.begin(), st.end(), y,
                       [](double v, const std::pair<double, double>& e) { return v < e.first; });
  return after != st.begin() && std::prev(after)->second <= z;
}

// Adds (y, z), not dominated by `st`, removing the pairs it dominates (contiguous from the
// first pair with q[1] >= y, since q[2] descends).
void staircase_insert(Staircase& st, double y, double z) {
  auto first =
      std::lower_bound(st.begin(), st.end(), y,
                       [](const std::pair<double, double>& e, double v) { return e.first < v; });
  auto last = first;
  while (last != st.end() && last->second >= z) ++last;
  if (first == last) {
    st.insert(first, {y, z});
  } else {
    *first = {y, z};
    st.erase(first + 1, last);
  }
}

std::vector<std::size_t> ranks_3d(const SortedUnique& s, bool first_only) {
  std::vector<Staircase> fronts;
  std::vector<std::size_t> rank(s.count());
  for (std::size_t r = 0; r < s.count(); ++r) {
    const double y = s.rows[r * 3 + 1];
    const double z = s.rows[r * 3 + 2];
    const std::size_t lo = first_undominating_front(fronts.size(), first_only,
                                                    [&](std::size_t f) { return staircase_dominates(fronts[f], y, z); });
    if (first_only && lo > 0) {
      rank[r] = kNotFirst;
      continue;
    }
    if (lo == fronts.size()) fronts.emplace_back();
    staircase_insert(fronts[lo], y, z);
    rank[r] = lo;
  }
  return rank;
}

// The front of each distinct point (kNotFirst beyond front 0 when `first_only`).
std::vector<std::size_t> front_ranks(const SortedUnique& s, std::size_t m, bool first_only) {
  switch (m) {
    case 1: {  // distinct values: each dominates every larger one
      std::vector<std::size_t> rank(s.count());
      for (std::size_t r = 0; r < rank.size(); ++r) rank[r] = first_only && r > 0 ? kNotFirst : r;
      return rank;
    }
    case 2:
      return ranks_2d(s, first_only);
    case 3:
      return ranks_3d(s, first_only);
    case 4:
      return ranks_ens<3>(s, m, first_only);
    default:
      return ranks_ens<0>(s, m, first_only);
  }
}

// The points strictly better than `reference` in every objective (the others add no volume),
// flattened, m values each.
std::vector<double> inside_reference(const std::vector<ObjectivePoint>& points,
                                     const ObjectivePoint& reference) {
  const std::size_t m = reference.size();
  std::vector<double> kept;
  for (const auto& p : points) {
    bool inside = true;
    for (std::size_t j = 0; j < m && inside; ++j) inside = p[j] < reference[j];
    if (inside) kept.insert(kept.end(), p.begin(), p.end());
  }
  return kept;
}

// 2-D: sweep by objective 0 ascending; each point that lowers the running minimum of objective
// 1 adds the strip between the old and the new minimum.
double hypervolume_2d(const std::vector<double>& flat, const ObjectivePoint& ref) {
  std::vector<std::pair<double, double>> pts(flat.size() / 2);
  for (std::size_t i = 0; i < pts.size(); ++i) pts[i] = {flat[2 * i], flat[2 * i + 1]};
  std::sort(pts.begin(), pts.end());
  double volume = 0.0;
  double floor = ref[1];
  for (const auto& [x, y] : pts) {
    if (y < floor) {
      volume += (ref[0] - x) * (floor - y);
      floor = y;
    }
  }
  return volume;
}

// 3-D: sweep by objective 2 ascending, keeping the 2-D staircase (non-dominated projections
// onto objectives 0 and 1; x ascending, y strictly descending) and its area. The slab between
// consecutive z values adds area x thickness. Inserting a point removes the staircase points
// it dominates and adds exactly the part of its box not covered before, so each insertion
// costs O(log N + removed): O(N log N) in all.
double hypervolume_3d(const std::vector<double>& flat, const ObjectivePoint& ref) {
  std::vector<std::array<double, 3>> pts(flat.size() / 3);
  for (std::size_t i = 0; i < pts.size(); ++i)
    pts[i] = {flat[3 * i], flat[3 * i + 1], flat[3 * i + 2]};
  std::sort(pts.begin(), pts.end(), [](const auto& a, const auto& b) { return a[2] < b[2]; });

  std::map<double, double> stair;  // x -> y
  double area = 0.0;
  double volume = 0.0;
  for (std::size_t i = 0; i < pts.size(); ++i) {
    const double x = pts[i][0];
    const double y = pts[i][1];
    auto after = stair.upper_bound(x);  // the staircase point left of or at x has the lowest y
    const bool covered = after != stair.begin() && std::prev(after)->second <= y;
    if (!covered) {
      auto it = stair.lower_bound(x);
      // Height already covered above y: up to the left neighbour's y (its y > this y).
      double level = it == stair.begin() ? ref[1] : std::prev(it)->second;
      double cx = x;
      double added = 0.0;
      while (it != stair.end() && it->second >= y) {  // dominated by the new point
        added += (it->first - cx) * (level - y);
        cx = it->first;
        level = it->second;
        it = stair.erase(it);
      }
      const double right = it == stair.end() ? ref[0] : it->first;
      added += (right - cx) * (level - y);
      stair.emplace_hint(it, x, y);
      area += added;
    }
    const double next_z = i + 1 < pts.size() ? pts[i + 1][2] : ref[2];
    if (next_z > pts[i][2]) volume += area * (next_z - pts[i][2]);
  }
  return volume;
}

}  // namespace

bool dominates(const ObjectivePoint& a, const ObjectivePoint& b) {
  NASFORGE_CHECK(a.size() == b.size(),
                 "expected two points with the same number of objectives, found {} and {}",
                 a.size(), b.size());
  bool better = false;
  for (std::size_t j = 0; j < a.size(); ++j) {
    if (!(a[j] <= b[j])) return false;  // worse, or NaN
    better = better || a[j] < b[j];
  }
  return better;
}

std::vector<std::vector<std::size_t>> non_dominated_sort(
    const std::vector<ObjectivePoint>& points) {
  if (points.empty()) return {};
  const std::size_t m = objectives_of(points, "the points");
  check_points(points, m, "the points");

  const SortedUnique s = sort_unique(points, m);
  const std::vector<std::size_t> rank = front_ranks(s, m, false);
  const std::size_t count = *std::max_element(rank.begin(), rank.end()) + 1;
  std::vector<std::vector<std::size_t>> fronts(count);
  for (std::size_t r = 0; r < s.count(); ++r) {
    auto& f = fronts[rank[r]];
    f.insert(f.end(), s.order.begin() + static_cast<std::ptrdiff_t>(s.group_begin[r]),
             s.order.begin() + static_cast<std::ptrdiff_t>(s.group_begin[r + 1]));
  }
  for (auto& f : fronts) std::sort(f.begin(), f.end());
  return fronts;
}

std::vector<std::size_t> pareto_front(const std::vector<ObjectivePoint>& points) {
  if (points.empty()) return {};
  const std::size_t m = objectives_of(points, "the points");
  check_points(points, m, "the points");

  const SortedUnique s = sort_unique(points, m);
  const std::vector<std::size_t> rank = front_ranks(s, m, true);
  std::vector<std::size_t> front;
  for (std::size_t r = 0; r < s.count(); ++r) {
    if (rank[r] != 0) continue;
    front.insert(front.end(), s.order.begin() + static_cast<std::ptrdiff_t>(s.group_begin[r]),
                 s.order.begin() + static_cast<std::ptrdiff_t>(s.group_begin[r + 1]));
  }
  std::sort(front.begin(), front.end());
  return front;
}

std::vector<double> crowding_distance(const std::vector<ObjectivePoint>& points,
                                      const std::vector<std::size_t>& front) {
  const std::size_t n = front.size();
  if (n == 0) return {};
  for (std::size_t k = 0; k < n; ++k) {
    NASFORGE_CHECK(front[k] < points.size(),
                   "expected indices into the {} points, found {} at position {} of the front",
                   points.size(), front[k], k);
  }
  const std::size_t m = points[front[0]].size();
  for (std::size_t k = 0; k < n; ++k) {
    const ObjectivePoint& p = points[front[k]];
    NASFORGE_CHECK(p.size() == m,
                   "expected {} objectives (as point {}) in every front member, found {} in "
                   "point {}",
                   m, front[0], p.size(), front[k]);
    for (std::size_t j = 0; j < m; ++j) {
      NASFORGE_CHECK(!std::isnan(p[j]), "expected numbers, found NaN in objective {} of point {}",
                     j, front[k]);
    }
  }

  std::vector<double> distance(n, n <= 2 ? kInf : 0.0);
  if (n <= 2) return distance;
  std::vector<double> value(n);
  std::vector<std::size_t> order(n);
  for (std::size_t j = 0; j < m; ++j) {
    for (std::size_t k = 0; k < n; ++k) value[k] = points[front[k]][j];
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return value[a] < value[b] || (value[a] == value[b] && a < b);
    });
    const double lo = value[order.front()];
    const double hi = value[order.back()];
    if (!(hi > lo)) continue;  // zero range: no member is more isolated than another
    const double range = hi - lo;
    distance[order.front()] = kInf;
    distance[order.back()] = kInf;
    for (std::size_t k = 1; k + 1 < n; ++k) {
      const double next = value[order[k + 1]];
      const double prev = value[order[k - 1]];
      const double gap = next == prev ? 0.0 : next - prev;  // avoids inf - inf
      // With an infinite range only an infinite gap counts (as +infinity).
      distance[order[k]] += std::isinf(range) ? (std::isinf(gap) ? kInf : 0.0) : gap / range;
    }
  }
  return distance;
}

double hypervolume(const std::vector<ObjectivePoint>& points, const ObjectivePoint& reference) {
  check_reference(reference);
  const std::size_t m = reference.size();
  check_points(points, m, "the points");
  NASFORGE_CHECK(m <= 3,
                 "expected at most 3 objectives for the exact hypervolume, found {}; use "
                 "hypervolume_approx for more",
                 m);
  const std::vector<double> kept = inside_reference(points, reference);
  if (kept.empty()) return 0.0;
  switch (m) {
    case 1:
      return reference[0] - *std::min_element(kept.begin(), kept.end());
    case 2:
      return hypervolume_2d(kept, reference);
    default:
      return hypervolume_3d(kept, reference);
  }
}

double hypervolume_approx(const std::vector<ObjectivePoint>& points,
                          const ObjectivePoint& reference, std::size_t samples,
                          std::uint64_t seed) {
  check_reference(reference);
  const std::size_t m = reference.size();
  check_points(points, m, "the points");
  NASFORGE_CHECK(samples > 0, "expected at least one sample, found {}", samples);

  const std::vector<double> kept = inside_reference(points, reference);
  if (kept.empty()) return 0.0;
  // Only non-dominated points can dominate a sample that no other point dominates; there are
  // usually far fewer of them.
  std::vector<ObjectivePoint> inside(kept.size() / m);
  for (std::size_t i = 0; i < inside.size(); ++i) {
    inside[i].assign(kept.begin() + static_cast<std::ptrdiff_t>(i * m),
                     kept.begin() + static_cast<std::ptrdiff_t>((i + 1) * m));
  }
  std::vector<double> front;
  for (std::size_t i : pareto_front(inside))
    front.insert(front.end(), inside[i].begin(), inside[i].end());

  std::vector<double> ideal(reference);
  for (std::size_t off = 0; off < front.size(); off += m) {
    for (std::size_t j = 0; j < m; ++j) ideal[j] = std::min(ideal[j], front[off + j]);
  }
  double box = 1.0;
  for (std::size_t j = 0; j < m; ++j) box *= reference[j] - ideal[j];
  if (!std::isfinite(box)) return kInf;

  Rng rng(seed);
  std::vector<double> u(m);
  std::size_t hits = 0;
  for (std::size_t s = 0; s < samples; ++s) {
    for (std::size_t j = 0; j < m; ++j) {
      u[j] = ideal[j] + rng.uniform01() * (reference[j] - ideal[j]);
    }
    for (std::size_t off = 0; off < front.size(); off += m) {
      std::size_t j = 0;
      while (j < m && front[off + j] <= u[j]) ++j;
      if (j == m) {
        ++hits;
        break;
      }
    }
  }
  return box * static_cast<double>(hits) / static_cast<double>(samples);
}

double igd(const std::vector<ObjectivePoint>& approximation,
           const std::vector<ObjectivePoint>& reference_front) {
  NASFORGE_CHECK(!reference_front.empty(),
                 "expected a non-empty reference front, found an empty one");
  const std::size_t m = objectives_of(reference_front, "the reference front");
  check_points(reference_front, m, "the reference front");
  check_points(approximation, m, "the approximation");
  if (approximation.empty()) return kInf;

  double total = 0.0;
  for (const auto& r : reference_front) {
    double best = kInf;
    for (const auto& a : approximation) {
      double d2 = 0.0;
      for (std::size_t j = 0; j < m; ++j) d2 += (a[j] - r[j]) * (a[j] - r[j]);
      best = std::min(best, d2);
    }
    total += std::sqrt(best);
  }
  return total / static_cast<double>(reference_front.size());
}

ObjectivePoint ObjectiveScaling::apply(const ObjectivePoint& p) const {
  NASFORGE_CHECK(lo.size() == hi.size(), "expected lo and hi of the same size, found {} and {}",
                 lo.size(), hi.size());
  NASFORGE_CHECK(p.size() == lo.size(), "expected a point with {} objectives, found {}", lo.size(),
                 p.size());
  ObjectivePoint out(p.size());
  for (std::size_t j = 0; j < p.size(); ++j) {
    out[j] = hi[j] == lo[j] ? 0.0 : (p[j] - lo[j]) / (hi[j] - lo[j]);
  }
  return out;
}

ObjectiveScaling scaling_of(const std::vector<ObjectivePoint>& front) {
  NASFORGE_CHECK(!front.empty(), "expected a non-empty front to scale, found an empty one");
  const std::size_t m = objectives_of(front, "the front");
  check_points(front, m, "the front");
  ObjectiveScaling s{front.front(), front.front()};
  for (const auto& p : front) {
    for (std::size_t j = 0; j < m; ++j) {
      s.lo[j] = std::min(s.lo[j], p[j]);
      s.hi[j] = std::max(s.hi[j], p[j]);
    }
  }
  return s;
}

}  // namespace nasforge
