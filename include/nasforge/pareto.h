#pragma once
/// \file pareto.h
/// Multi-objective tools: Pareto dominance, non-dominated sorting, NSGA-II crowding distance,
/// hypervolume (exact for up to 3 objectives, Monte Carlo for any number), inverted
/// generational distance and objective scaling. Torch-free.
///
/// **Every objective is minimised.** A caller with an objective to maximise (accuracy, say)
/// negates it first: `{-accuracy, latency_ms, params}`.
///
/// Every function that takes several points requires them to have the same number of
/// objectives (at least one) and no NaN; otherwise it throws `InvalidArgument` naming the
/// point. Infinities are allowed and compare as usual.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace nasforge {

/// The objective values of one candidate, all minimised.
using ObjectivePoint = std::vector<double>;

/// True when `a` Pareto-dominates `b`: `a` is no worse than `b` in every objective and strictly
/// better in at least one. Equal points do not dominate each other; a NaN objective compares
/// as neither better nor worse, so a point with NaN never dominates. Throws InvalidArgument if
/// the sizes differ.
bool dominates(const ObjectivePoint& a, const ObjectivePoint& b);

/// Sorts `points` into non-dominated fronts: front 0 holds the points no other point dominates,
/// front k the points dominated only by points of fronts < k. Returns the indices into `points`
/// of each front, ascending within a front; every index appears exactly once (an empty input
/// gives no fronts). Equal points land in the same front.
///
/// Efficient Non-dominated Sort with binary search over the fronts (ENS-BS, Zhang et al.,
/// IEEE TEVC 2015) after a lexicographic sort: O(N log N) for 1 and 2 objectives,
/// O(N log N log F) for 3 (F fronts; each front kept as a staircase), O(M N^2) worst case and
/// far less on typical data for more. 10,000 random 3-objective points take a few
/// milliseconds. Throws InvalidArgument for a NaN or for points of different sizes.
std::vector<std::vector<std::size_t>> non_dominated_sort(const std::vector<ObjectivePoint>& points);

/// The indices of the non-dominated points of `points` (front 0 of `non_dominated_sort`),
/// ascending; cheaper than the full sort. Same errors as `non_dominated_sort`.
std::vector<std::size_t> pareto_front(const std::vector<ObjectivePoint>& points);

/// NSGA-II crowding distance (Deb et al., IEEE TEVC 2002) of the members of one front, in the
/// order of `front` (indices into `points`). Per objective the members are sorted by value
/// (ties by position in `front`); the first and last get +infinity and every other member adds
/// the gap between its two neighbours divided by the objective's range over the front. An
/// objective with zero range contributes nothing (so a front of identical points gets 0
/// everywhere); a front of 1 or 2 members gets +infinity for each. Throws InvalidArgument for
/// an index out of range, a NaN, or points of different sizes.
std::vector<double> crowding_distance(const std::vector<ObjectivePoint>& points,
                                      const std::vector<std::size_t>& front);

/// The exact hypervolume dominated by `points` and bounded by `reference`: the volume of the
/// union of the boxes [p, reference]. A point not strictly better than `reference` in every
/// objective contributes nothing; dominated and duplicated points are allowed. Supports 1, 2
/// and 3 objectives (sort sweep in O(N log N); for 3, a sweep over the third objective keeping
/// a 2-D staircase, also O(N log N)); for more it throws InvalidArgument pointing to
/// `hypervolume_approx`. Also throws for a NaN (in `points` or `reference`) or a size mismatch.
double hypervolume(const std::vector<ObjectivePoint>& points, const ObjectivePoint& reference);

/// A Monte Carlo estimate of `hypervolume(points, reference)` for any number of objectives:
/// `samples` points drawn uniformly (with `Rng(seed)`) in the box between the ideal point (the
/// per-objective minimum over the points strictly better than `reference`) and `reference`;
/// the dominated fraction times the box volume. The same arguments give the same result. The
/// standard error is about box volume x sqrt(f (1 - f) / samples) for a dominated fraction f.
/// Returns 0 when no point is strictly better than `reference`, +infinity when the box volume
/// is not finite. Costs O(samples x front size x objectives). Throws InvalidArgument for
/// `samples == 0`, a NaN or a size mismatch.
double hypervolume_approx(const std::vector<ObjectivePoint>& points,
                          const ObjectivePoint& reference, std::size_t samples, std::uint64_t seed);

/// Inverted generational distance: the mean, over the points of `reference_front`, of the
/// Euclidean distance to the nearest point of `approximation` (smaller is better; 0 when the
/// approximation covers the reference front). +infinity for an empty approximation. Throws
/// InvalidArgument for an empty reference front, a NaN or a size mismatch. O(|A| |R| M).
double igd(const std::vector<ObjectivePoint>& approximation,
           const std::vector<ObjectivePoint>& reference_front);

/// A per-objective linear map: objective j goes from `lo[j] -> 0` to `hi[j] -> 1`.
/// Typically from `scaling_of(true_front)`, to report the hypervolume of scaled points with the
/// reference point {1.1, ..., 1.1}.
struct ObjectiveScaling {
  std::vector<double> lo;  ///< the value mapped to 0, per objective
  std::vector<double> hi;  ///< the value mapped to 1, per objective

  /// `(p[j] - lo[j]) / (hi[j] - lo[j])` per objective; 0 where `hi[j] == lo[j]`. Values
  /// outside [lo, hi] map outside [0, 1]. Throws InvalidArgument if `lo`, `hi` and `p` differ
  /// in size.
  ObjectivePoint apply(const ObjectivePoint& p) const;
};

/// The scaling that maps `front` onto [0, 1] per objective (lo = minimum, hi = maximum over
/// the front). Throws InvalidArgument for an empty front, a NaN or a size mismatch.
ObjectiveScaling scaling_of(const std::vector<ObjectivePoint>& front);

}  // namespace nasforge
