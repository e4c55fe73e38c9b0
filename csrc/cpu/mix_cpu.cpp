// CPU implementation of fastmix::mix_: applies a MixParams to a batch in place.
//
// Work is split over element positions, not samples: chunk c covers the same element range of
// every sample and walks the whole in-place plan (mix_plan.h) for that range, with one
// chunk-sized buffer per thread. Chunks are independent, so at::parallel_for runs them on
// torch's intra-op threads and extra memory is threads x chunk, whatever the batch size.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <optional>
#include <vector>

#include "../checks.h"
#include "../mix_plan.h"
#include "blend_math.h"
#include "mask_field_cpu.h"
#include "resize_cpu.h"

namespace fastmix {
namespace cpu {
namespace {

// Each plan step streams the same range of one or two samples; a range of 64-128 KiB per sample
// keeps a step's working set in L2 and lets the prefetchers run, while leaving enough chunks to
// keep every thread busy. The generic strided path uses smaller chunks (its rows are gathered).
constexpr int64_t kMaxChunkBytes = 128 * 1024;
constexpr int64_t kMinChunkBytes = 16 * 1024;
constexpr int64_t kStridedChunkBytes = 32 * 1024;

int64_t dense_chunk_elems(int64_t numel, size_t elem_size) {
  const int64_t bytes = numel * static_cast<int64_t>(elem_size);
  const int64_t per_thread = bytes / (4 * static_cast<int64_t>(at::get_num_threads()));
  const int64_t chunk_bytes = std::clamp(per_thread, kMinChunkBytes, kMaxChunkBytes);
  return std::max<int64_t>(1, chunk_bytes / static_cast<int64_t>(elem_size));
}

struct Params {
  const int64_t* partner;
  const float* lam;
  const uint8_t* kind;
  const int64_t* box;   // (B, 4): y0, y1, x0, x1
  const uint8_t* mask;  // pixel_mask (B, H, W), planes dense, mask_stride bytes apart; null without one
  int64_t mask_stride;
  MaskField field;      // or the image the MASK samples' masks are cut from (dense layouts only)
};

// The batch to mix in place, described for the dense path (mix_kernels.cuh's DenseLayout; numba's
// mix_numba.DenseLayout): samples whose elements fill one block of memory in the same order
// (contiguous NCHW, channels_last, any dense permutation). Blending is then elementwise over [0, numel).
// For pasting and masking, element e lies in row e / row_len, at image row (e / row_len) % height and
// column (e % row_len) / col_unit: col_unit is 1 for NCHW and C for channels_last.
struct DenseLayout {
  int64_t numel = 0;
  int64_t batch_stride = 0;
  bool paste_ok = false;
  int64_t row_len = 1;
  int64_t col_unit = 1;
  int64_t height = 1;
  int64_t width = 1;  // W: a mask plane's row length
};

bool describe_dense(const at::Tensor& x, DenseLayout* out) {
  const int64_t ndim = x.dim();
  std::vector<std::pair<int64_t, int64_t>> dims;  // (stride, size) of non-batch dims of size > 1
  int64_t numel = 1;
  for (int64_t d = 1; d < ndim; ++d) {
    numel *= x.size(d);
    if (x.size(d) > 1) dims.emplace_back(x.stride(d), x.size(d));
  }
  std::sort(dims.begin(), dims.end());
  int64_t expected = 1;
  for (const auto& [stride, size] : dims) {
    if (stride != expected) return false;
    expected *= size;
  }
  if (x.size(0) > 1 && x.stride(0) < numel) return false;  // samples interleave
  out->numel = numel;
  out->batch_stride = x.stride(0);
  if (ndim >= 3) {
    const int64_t h = x.size(-2), w = x.size(-1);
    const int64_t sh = x.stride(-2), sw = x.stride(-1);
    // Dims stored inside a pixel (channels for channels_last) make up col_unit.
    int64_t col_unit = 1;
    for (int64_t d = 1; d < ndim - 2; ++d)
      if (x.size(d) > 1 && x.stride(d) < sw) col_unit *= x.size(d);
    if (h > 1 && w > 1 && sw == col_unit && sh == w * col_unit) {
      out->paste_ok = true;
      out->row_len = w * col_unit;
      out->col_unit = col_unit;
      out->height = h;
      out->width = w;
    }
  }
  return true;
}

struct SampleView {
  uint8_t kind;
  float lam;
  const int64_t* box;    // y0, y1, x0, x1
  const uint8_t* mask;   // its (H, W) plane of pixel_mask (null without one)
  const MaskField* field;  // or the mask field its mask is cut from (its box the window), else null
  int64_t index;           // i, for the field's threshold
};

SampleView sample_view(const Params& p, int64_t i) {
  return {p.kind[i], p.lam[i], p.box + 4 * i, p.mask == nullptr ? nullptr : p.mask + i * p.mask_stride,
          p.field.values == nullptr ? nullptr : &p.field, i};
}

// -- masks (kMask) on the dense path ---------------------------------------------------------------
//
// A mask changes pixels anywhere in a row, so its steps walk rows in pieces short enough for L1:
// the piece of a row, its mask bytes (spread over a pixel's elements for channels_last) and, for a
// pair with one masking side, the saved piece of the other side.
constexpr int64_t kMaskPiece = 2048;  // elements

// Per-thread scratch of the mask steps (empty when no sample masks).
template <typename T>
struct MaskScratch {
  std::vector<T> values;
  std::vector<uint8_t> a, b;
  // A sample's plane cut from a mask field, and whose (-1: none yet): a pair's two sides; cut
  // once per sample and thread, then read row by row (every channel's rows read the same one).
  std::vector<uint8_t> plane_a, plane_b;
  int64_t plane_a_of = -1, plane_b_of = -1;
  explicit MaskScratch(bool any_mask)
      : values(any_mask ? kMaskPiece : 0), a(any_mask ? kMaskPiece : 0), b(any_mask ? kMaskPiece : 0) {}
};

// f(offset, n, h, col) for each piece of elements [e0, e1) within one row: offset from e0, n at
// most kMaskPiece, h the image row, col the element column of the piece's start in its row.
template <typename F>
FASTMIX_ALWAYS_INLINE void for_each_row_piece(const DenseLayout& g, int64_t e0, int64_t e1, F&& f) {
  const int64_t row = e0 / g.row_len;
  int64_t col = e0 - row * g.row_len, h = row % g.height;
  for (int64_t pos = e0; pos < e1;) {
    const int64_t n = std::min({g.row_len - col, e1 - pos, kMaskPiece});
    f(pos - e0, n, h, col);
    pos += n;
    col += n;
    if (col == g.row_len) {
      col = 0;
      if (++h == g.height) h = 0;
    }
  }
}

// The mask bytes of elements [col, col + n) of image row h, one per element: the plane's own row
// when a pixel is one element (NCHW), else spread into `spread`.
FASTMIX_ALWAYS_INLINE const uint8_t* mask_bytes_of_row(const uint8_t* row, const DenseLayout& g, int64_t col,
                                                       int64_t n, uint8_t* spread) {
  if (g.col_unit == 1) return row + col;
  spread_mask(row, g.col_unit, col, n, spread);
  return spread;
}

// The same for sample s: its plane's row, or the row of its plane cut from its mask field into
// `plane` (when `plane_of` says it holds another sample's).
FASTMIX_ALWAYS_INLINE const uint8_t* mask_bytes(const SampleView& s, const DenseLayout& g, int64_t h, int64_t col,
                                                int64_t n, uint8_t* spread, std::vector<uint8_t>& plane,
                                                int64_t& plane_of) {
  if (s.field == nullptr) return mask_bytes_of_row(s.mask + h * g.width, g, col, n, spread);
  if (plane_of != s.index) {
    plane.resize(static_cast<size_t>(g.height * g.width));
    cut_field_rows(*s.field, s.index, s.box, 0, g.height, plane.data());
    plane_of = s.index;
  }
  return mask_bytes_of_row(plane.data() + h * g.width, g, col, n, spread);
}

// Columns [lo, hi) of a row (in elements from the row start) that a paste sample takes.
std::pair<int64_t, int64_t> paste_cols(const SampleView& s, const DenseLayout& g, int64_t h) {
  if (s.kind != kPaste || h < s.box[0] || h >= s.box[1]) return {0, 0};
  return {s.box[2] * g.col_unit, s.box[3] * g.col_unit};
}

PixelOp op_at(const SampleView& s, std::pair<int64_t, int64_t> cols, int64_t col) {
  if (s.kind == kBlend) return PixelOp::kBlend;
  return col >= cols.first && col < cols.second ? PixelOp::kTake : PixelOp::kKeep;
}

// The first row at or after `row` that sample a or b changes: `row` itself when one blends, else
// the next row whose image row lies in a non-empty paste box; INT64_MAX when there is none. Rows
// in between are kept by both, so a paste costs its box's rows, not a walk over every row.
int64_t next_touched_row(int64_t row, const DenseLayout& g, const SampleView& a, const SampleView& b) {
  int64_t next = INT64_MAX;
  const int64_t h = row % g.height, image_start = row - h;
  for (const SampleView* s : {&a, &b}) {
    if (s->kind == kBlend) return row;
    if (s->kind != kPaste || s->box[0] >= s->box[1] || s->box[2] >= s->box[3]) continue;
    const int64_t y0 = s->box[0], y1 = s->box[1];
    next = std::min(next, h < y1 ? image_start + std::max(h, y0) : image_start + g.height + y0);
  }
  return next;
}

// A paste touches a few short segments per row, one row apart: too little per row for the
// hardware prefetchers, so each would wait for memory in turn. Asking for the segments a few
// rows ahead keeps several rows in flight. [lo, hi): elements from x.
constexpr int64_t kRowsAhead = 4;  // measured on square boxes: 3-8 rows ahead into L2 (prefetcht1) did best

template <typename T>
FASTMIX_ALWAYS_INLINE void prefetch_span(const T* x, int64_t lo, int64_t hi) {
  for (int64_t k = lo; k < hi; k += 64 / static_cast<int64_t>(sizeof(T))) __builtin_prefetch(x + k, 0, 2);
  __builtin_prefetch(x + hi - 1, 0, 2);
}

template <typename T>
FASTMIX_ALWAYS_INLINE void prefetch_ahead(const T* x, int64_t lo, int64_t hi, int64_t row_len, int64_t limit) {
  const int64_t ahead = kRowsAhead * row_len;
  if (hi + ahead > limit) return;
  prefetch_span(x + ahead, lo, hi);
}

// The rows of a box, plane (channel) after plane, in memory order, from the first at or after a
// given row: a counter per step instead of a division (next_touched_row divides; per row of a
// mid-size box that was 10-20% of its paste).
struct BoxRowWalk {
  int64_t base, y, y0, y1, height;
  BoxRowWalk(int64_t first_row, int64_t box_y0, int64_t box_y1, int64_t rows_per_plane)
      : base(first_row - first_row % rows_per_plane), y(first_row % rows_per_plane), y0(box_y0), y1(box_y1),
        height(rows_per_plane) {
    if (y < y0) y = y0;
    else if (y >= y1) y = y0, base += height;
  }
  int64_t row() const { return base + y; }
  void next() {
    if (++y == y1) y = y0, base += height;
  }
};

// copy(lo, hi) for each row segment of a non-empty box within elements [e0, e1) (offsets from
// e0), in memory order; each after prefetching, in x and y, the segment kRowsAhead steps later:
// the rows below in the box, then the next plane's first (rows below a box's end are never read).
template <typename T, typename Copy>
FASTMIX_ALWAYS_INLINE void walk_box_rows(const int64_t* box, const DenseLayout& g, int64_t e0, int64_t e1,
                                         const T* x, const T* y, Copy copy) {
  const int64_t lo_col = box[2] * g.col_unit, hi_col = box[3] * g.col_unit;
  if (box[0] >= box[1] || lo_col >= hi_col) return;
  const int64_t last_row = (e1 + g.row_len - 1) / g.row_len;
  int64_t lo = 0, hi = 0;
  auto segment_of = [&](int64_t row) {  // the box's columns of a row, clipped to [e0, e1)
    lo = std::max(row * g.row_len + lo_col, e0) - e0;
    hi = std::min(row * g.row_len + hi_col, e1) - e0;
    return lo < hi;
  };
  BoxRowWalk walk(e0 / g.row_len, box[0], box[1], g.height), ahead = walk;
  for (int64_t k = 0; k < kRowsAhead; ++k) ahead.next();
  for (; walk.row() < last_row; walk.next(), ahead.next()) {
    if (ahead.row() < last_row && segment_of(ahead.row())) prefetch_span(x, lo, hi), prefetch_span(y, lo, hi);
    if (segment_of(walk.row())) copy(lo, hi);
  }
}

// The rows of one box swapped between a and b: compiled for each x86-64 level like the element
// loops (blend_math.h), so that the swap of a row inlines into the walk. A call per row to the
// multiversioned swap_ranges cost 0.1-0.2 of a pass on boxes of 150-200 rows (measured against a
// plain -march=native loop, benchmarks/hardware_floors.py).
template <typename T>
FASTMIX_MULTIVERSION void swap_box_rows(T* a, T* b, const int64_t* box, const DenseLayout& g, int64_t e0, int64_t e1) {
  walk_box_rows(box, g, e0, e1, static_cast<const T*>(a), static_cast<const T*>(b),
                [&](int64_t lo, int64_t hi) { swap_impl(a + lo, b + lo, hi - lo); });
}

// x[a] <- mix(x[a], src) over elements [e0, e1); src holds the partner's originals.
template <typename T>
void apply_dense(T* dst, const T* src, const SampleView& s, const DenseLayout& g, int64_t e0, int64_t e1,
                 MaskScratch<T>& ms) {
  using acc_t = typename AccType<T>::type;
  if (s.kind == kBlend) {
    const acc_t lam = static_cast<acc_t>(s.lam);
    blend_into(dst, src, e1 - e0, lam, acc_t(1) - lam);
    return;
  }
  if (s.kind == kMask) {
    for_each_row_piece(g, e0, e1, [&](int64_t off, int64_t n, int64_t h, int64_t col) {
      select_into(dst + off, src + off, mask_bytes(s, g, h, col, n, ms.a.data(), ms.plane_a, ms.plane_a_of), n);
    });
    return;
  }
  if (s.kind != kPaste) return;
  walk_box_rows(s.box, g, e0, e1, static_cast<const T*>(dst), src,
                [&](int64_t lo, int64_t hi) { std::memcpy(dst + lo, src + lo, (hi - lo) * sizeof(T)); });
}

// Both samples of a swapped pair over a segment where each does one thing.
template <typename T>
void pair_segment(T* a, T* b, int64_t n, PixelOp op_a, PixelOp op_b, const SampleView& sa,
                  const SampleView& sb) {
  using acc_t = typename AccType<T>::type;
  const acc_t lam_a = static_cast<acc_t>(sa.lam), lam_b = static_cast<acc_t>(sb.lam);
  const acc_t rest_a = acc_t(1) - lam_a, rest_b = acc_t(1) - lam_b;
  using P = PixelOp;
  if (op_a == P::kBlend && op_b == P::kBlend) blend_pair(a, b, n, lam_a, rest_a, lam_b, rest_b);
  else if (op_a == P::kBlend && op_b == P::kTake) blend_and_take(a, b, n, lam_a, rest_a);
  else if (op_a == P::kTake && op_b == P::kBlend) blend_and_take(b, a, n, lam_b, rest_b);
  else if (op_a == P::kBlend) blend_into(a, static_cast<const T*>(b), n, lam_a, rest_a);
  else if (op_b == P::kBlend) blend_into(b, static_cast<const T*>(a), n, lam_b, rest_b);
  else if (op_a == P::kTake && op_b == P::kTake) swap_ranges(a, b, n);
  else if (op_a == P::kTake) std::memcpy(a, b, n * sizeof(T));
  else if (op_b == P::kTake) std::memcpy(b, a, n * sizeof(T));
}

// The op of a sample along a whole row, when it does not change along it.
bool uniform_on_row(const SampleView& s, std::pair<int64_t, int64_t> cols, int64_t row_len, PixelOp* op) {
  if (s.kind == kBlend) *op = PixelOp::kBlend;
  else if (cols.first >= cols.second) *op = PixelOp::kKeep;
  else if (cols.first <= 0 && cols.second >= row_len) *op = PixelOp::kTake;
  else return false;
  return true;
}

// A swapped pair of which one side masks or both do, over elements [e0, e1), a row piece at a time:
// both masking, one select loop from one read of each; else the masking side m's elements that the
// other side o needs (its box's, or all for a blend) are saved to L1, m selects from o's originals,
// then o mixes from the saved ones. Each sample is read and written once from memory.
template <typename T>
void pair_with_mask(T* a, T* b, const SampleView& sa, const SampleView& sb, const DenseLayout& g, int64_t e0,
                    int64_t e1, MaskScratch<T>& ms) {
  if (sa.kind == kMask && sb.kind == kMask) {
    for_each_row_piece(g, e0, e1, [&](int64_t off, int64_t n, int64_t h, int64_t col) {
      const uint8_t* ma = mask_bytes(sa, g, h, col, n, ms.a.data(), ms.plane_a, ms.plane_a_of);
      const bool one_plane = sa.field == nullptr && sb.mask == sa.mask;  // batch mode
      const uint8_t* mb = one_plane ? ma : mask_bytes(sb, g, h, col, n, ms.b.data(), ms.plane_b, ms.plane_b_of);
      select_pair(a + off, b + off, ma, mb, n);
    });
    return;
  }
  const bool a_masks = sa.kind == kMask;
  T* m = a_masks ? a : b;
  T* o = a_masks ? b : a;
  const SampleView& sm = a_masks ? sa : sb;
  const SampleView& so = a_masks ? sb : sa;
  using acc_t = typename AccType<T>::type;
  const acc_t lam = static_cast<acc_t>(so.lam), rest = acc_t(1) - lam;
  T* saved = ms.values.data();
  for_each_row_piece(g, e0, e1, [&](int64_t off, int64_t n, int64_t h, int64_t col) {
    const uint8_t* mm = mask_bytes(sm, g, h, col, n, ms.a.data(), ms.plane_a, ms.plane_a_of);
    int64_t lo = 0, hi = n;  // what o takes of m, from the piece's start
    if (so.kind != kBlend) {
      const auto cols = paste_cols(so, g, h);
      lo = std::max(cols.first, col) - col;
      hi = std::min(cols.second, col + n) - col;
    }
    if (lo < hi) std::memcpy(saved, m + off + lo, (hi - lo) * sizeof(T));
    select_into(m + off, static_cast<const T*>(o + off), mm, n);
    if (lo >= hi) return;
    if (so.kind == kBlend) blend_into(o + off, static_cast<const T*>(saved), n, lam, rest);
    else std::memcpy(o + off + lo, saved, (hi - lo) * sizeof(T));
  });
}

// A swapped pair (a 2-cycle) over elements [e0, e1), reading and writing each sample once.
// Runs of rows where both samples do one thing (all of a blend, the rows a box misses) are
// merged into one contiguous call; rows a box crosses are split at the box's columns.
template <typename T>
void pair_dense(T* a, T* b, const SampleView& sa, const SampleView& sb, const DenseLayout& g, int64_t e0,
                int64_t e1, MaskScratch<T>& ms) {
  if (sa.kind == kMask || sb.kind == kMask) {
    pair_with_mask(a, b, sa, sb, g, e0, e1, ms);
    return;
  }
  if (sa.kind == kBlend && sb.kind == kBlend) {
    pair_segment(a, b, e1 - e0, PixelOp::kBlend, PixelOp::kBlend, sa, sb);
    return;
  }
  if (sa.kind == kPaste && sb.kind == kPaste && std::equal(sa.box, sa.box + 4, sb.box)) {
    // The same box on both sides (batch and pair modes): swap its rows, nothing else to decide.
    swap_box_rows(a, b, sa.box, g, e0, e1);
    return;
  }
  // A paste's short segments are prefetched a few rows ahead. A row that a sample blends is read
  // whole, which the hardware prefetchers follow on their own.
  const bool prefetch_boxes = sa.kind != kBlend && sb.kind != kBlend;
  const int64_t last_row = (e1 + g.row_len - 1) / g.row_len;
  int64_t pos = e0;
  while (pos < e1) {
    const int64_t touched = next_touched_row(pos / g.row_len, g, sa, sb);
    if (touched >= last_row) break;  // INT64_MAX included: no box row left
    if (touched > pos / g.row_len) pos = touched * g.row_len;
    const int64_t row = pos / g.row_len, row_start = row * g.row_len;
    const int64_t h = row % g.height;
    const auto cols_a = paste_cols(sa, g, h), cols_b = paste_cols(sb, g, h);
    PixelOp op_a, op_b;
    if (uniform_on_row(sa, cols_a, g.row_len, &op_a) && uniform_on_row(sb, cols_b, g.row_len, &op_b)) {
      int64_t end = std::min(row_start + g.row_len, e1);
      for (int64_t next = row + 1; end < e1; ++next) {
        const int64_t hn = next % g.height;
        PixelOp na, nb;
        if (!uniform_on_row(sa, paste_cols(sa, g, hn), g.row_len, &na) ||
            !uniform_on_row(sb, paste_cols(sb, g, hn), g.row_len, &nb) || na != op_a || nb != op_b)
          break;
        end = std::min(end + g.row_len, e1);
      }
      if (op_a != PixelOp::kKeep || op_b != PixelOp::kKeep)
        pair_segment(a + (pos - e0), b + (pos - e0), end - pos, op_a, op_b, sa, sb);
      pos = end;
      continue;
    }
    const int64_t lo = pos - row_start;
    const int64_t hi = std::min(row_start + g.row_len, e1) - row_start;
    for (const auto& cols : {cols_a, cols_b}) {
      const int64_t s = std::max(cols.first, lo), t = std::min(cols.second, hi);
      if (s >= t || !prefetch_boxes) continue;
      prefetch_ahead(a, row_start + s - e0, row_start + t - e0, g.row_len, e1 - e0);
      prefetch_ahead(b, row_start + s - e0, row_start + t - e0, g.row_len, e1 - e0);
    }
    // Split [lo, hi) where a box starts or ends, so each piece is uniform for both samples.
    int64_t cuts[6] = {lo, hi, cols_a.first, cols_a.second, cols_b.first, cols_b.second};
    std::sort(cuts, cuts + 6);
    for (int c = 0; c + 1 < 6; ++c) {
      const int64_t s = std::max(cuts[c], lo), t = std::min(cuts[c + 1], hi);
      if (s >= t) continue;
      const PixelOp pa = op_at(sa, cols_a, s), pb = op_at(sb, cols_b, s);
      if (pa == PixelOp::kKeep && pb == PixelOp::kKeep) continue;
      const int64_t off = row_start + s - e0;
      pair_segment(a + off, b + off, t - s, pa, pb, sa, sb);
    }
    pos = row_start + hi;
  }
}

template <typename T>
void dense_chunk(T* data, const DenseLayout& g, const std::vector<PlanStep>& plan,
                 const Params& p, int64_t e0, int64_t e1, T* buf, MaskScratch<T>& ms) {
  auto at = [&](int64_t i) { return data + i * g.batch_stride + e0; };
  for (const PlanStep& step : plan) {
    switch (step.op) {
      case StepOp::kSave:
        std::memcpy(buf, at(step.a), (e1 - e0) * sizeof(T));
        break;
      case StepOp::kApply:
        apply_dense(at(step.a), static_cast<const T*>(at(step.b)), sample_view(p, step.a), g, e0, e1, ms);
        break;
      case StepOp::kApplyFromBuffer:
        apply_dense(at(step.a), static_cast<const T*>(buf), sample_view(p, step.a), g, e0, e1, ms);
        break;
      case StepOp::kPair:
        pair_dense(at(step.a), at(step.b), sample_view(p, step.a), sample_view(p, step.b), g, e0, e1, ms);
        break;
    }
  }
}

// Any other layout (samples interleaved, gaps between elements), for the generic path
// (mix_kernels.cuh's StridedLayout; numba's mix_numba.StridedLayout): rows along the sample's
// smallest-stride dim, each located by its multi-index; the buffer holds a chunk's rows packed.
struct StridedLayout {
  int64_t ndim = 0;
  std::vector<int64_t> sizes, strides;  // of x, batch dim included
  int64_t inner_dim = -1;               // dim the rows run along (-1: one element per sample)
  int64_t inner_len = 1;
  std::vector<int64_t> outer_dims;      // the other non-batch dims, outermost first
  int64_t rows = 1;
};

StridedLayout describe_strided(const at::Tensor& x) {
  StridedLayout g;
  g.ndim = x.dim();
  g.sizes = x.sizes().vec();
  g.strides = x.strides().vec();
  for (int64_t d = 1; d < g.ndim; ++d)
    if (g.sizes[d] > 1 && (g.inner_dim < 0 || g.strides[d] < g.strides[g.inner_dim])) g.inner_dim = d;
  if (g.inner_dim > 0) g.inner_len = g.sizes[g.inner_dim];
  for (int64_t d = 1; d < g.ndim; ++d)
    if (d != g.inner_dim && g.sizes[d] > 1) g.outer_dims.push_back(d);
  std::sort(g.outer_dims.begin(), g.outer_dims.end(),
            [&](int64_t a, int64_t b) { return g.strides[a] > g.strides[b]; });
  for (int64_t d : g.outer_dims) g.rows *= g.sizes[d];
  return g;
}

struct RowInfo {
  int64_t offset;  // of the row's first element within its sample
  int64_t h, w;    // image position of the row's first element (when dim >= 3)
};

RowInfo locate_row(const StridedLayout& g, int64_t row) {
  RowInfo info{0, 0, 0};
  for (auto it = g.outer_dims.rbegin(); it != g.outer_dims.rend(); ++it) {
    const int64_t d = *it, idx = row % g.sizes[d];
    row /= g.sizes[d];
    info.offset += idx * g.strides[d];
    if (d == g.ndim - 2) info.h = idx;
    if (d == g.ndim - 1) info.w = idx;
  }
  return info;
}

// Range [lo, hi) of positions k along a row whose pixel lies inside the box.
std::pair<int64_t, int64_t> box_span_on_row(const StridedLayout& g, const RowInfo& r,
                                            const int64_t* box) {
  const int64_t H = g.ndim - 2, W = g.ndim - 1;
  auto clip = [&](int64_t a, int64_t b) {
    return std::make_pair(std::max<int64_t>(a, 0), std::min<int64_t>(b, g.inner_len));
  };
  if (g.inner_dim == W) {
    if (r.h < box[0] || r.h >= box[1]) return {0, 0};
    return clip(box[2], box[3]);
  }
  if (g.inner_dim == H) {
    if (r.w < box[2] || r.w >= box[3]) return {0, 0};
    return clip(box[0], box[1]);
  }
  const bool inside = r.h >= box[0] && r.h < box[1] && r.w >= box[2] && r.w < box[3];
  return inside ? std::make_pair<int64_t, int64_t>(0, int64_t(g.inner_len)) : std::make_pair<int64_t, int64_t>(0, 0);
}

template <typename T>
void strided_chunk(T* data, const StridedLayout& g, const std::vector<PlanStep>& plan,
                   const Params& p, int64_t r0, int64_t r1, T* buf) {
  using acc_t = typename AccType<T>::type;
  const int64_t sb = g.strides[0];
  const int64_t si = g.inner_dim > 0 ? g.strides[g.inner_dim] : 1;
  std::vector<RowInfo> rows(r1 - r0);
  for (int64_t r = r0; r < r1; ++r) rows[r - r0] = locate_row(g, r);
  auto save = [&](int64_t i) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* s = data + i * sb + rows[r - r0].offset;
      T* packed = buf + (r - r0) * g.inner_len;
      for (int64_t k = 0; k < g.inner_len; ++k) packed[k] = s[k * si];
    }
  };
  // x[i] <- mix(x[i], x[j]), or mix(x[i], buffer) when j < 0.
  auto apply = [&](int64_t i, int64_t j) {
    for (int64_t r = r0; r < r1; ++r) {
      const RowInfo& row = rows[r - r0];
      T* dst = data + i * sb + row.offset;
      const T* src = j < 0 ? buf + (r - r0) * g.inner_len : data + j * sb + row.offset;
      const int64_t src_stride = j < 0 ? 1 : si;
      if (p.kind[i] == kBlend) {
        const acc_t lam = static_cast<acc_t>(p.lam[i]);
        blend_strided(dst, si, src, src_stride, g.inner_len, lam, acc_t(1) - lam);
        continue;
      }
      if (p.kind[i] == kMask) {
        // The row's pixels: along W, along H, or one pixel (the row runs along another dim).
        const int64_t W = g.sizes[g.ndim - 1];
        const uint8_t* m = p.mask + i * p.mask_stride + row.h * W + row.w;
        const int64_t step = g.inner_dim == g.ndim - 1 ? 1 : g.inner_dim == g.ndim - 2 ? W : 0;
        for (int64_t k = 0; k < g.inner_len; ++k)
          if (m[k * step]) dst[k * si] = src[k * src_stride];
        continue;
      }
      const auto [lo, hi] = box_span_on_row(g, row, p.box + 4 * i);
      for (int64_t k = lo; k < hi; ++k) dst[k * si] = src[k * src_stride];
    }
  };
  for (const PlanStep& step : plan) {
    switch (step.op) {
      case StepOp::kSave: save(step.a); break;
      case StepOp::kApply: apply(step.a, step.b); break;
      case StepOp::kApplyFromBuffer: apply(step.a, -1); break;
      case StepOp::kPair:  // rare layouts: a pair is a 2-cycle through the buffer
        save(step.a);
        apply(step.a, step.b);
        apply(step.b, -1);
        break;
    }
  }
}

// -- resizes (kResize, kResizeNearest): the plan a step at a time ---------------------------------
//
// A resize reads its whole partner, so the chunks above, which walk every step for one range of
// positions, cannot run it. When a batch has one, each step runs over whole samples, in the plan's
// order, with the threads splitting the step (rows of a box, or chunks of positions). Extra memory:
// one sample (a cycle's saved first sample) and one box (a swapped pair whose side resizes: its
// box is made from the other side's original before that side is written).

// One image of the batch as a resize reads and writes it: the (H, W) strides and the offset of each
// channel's (0, 0) pixel (every index of the dims between B and H).
struct ImageGeometry {
  ResizeSource source;
  std::vector<int64_t> channels;
};

ImageGeometry describe_image(const at::Tensor& x) {
  ImageGeometry g{{x.size(-2), x.size(-1), x.stride(-2), x.stride(-1)}, {0}};
  for (int64_t d = 1; d < x.dim() - 2; ++d) {
    std::vector<int64_t> next;
    for (int64_t k = 0; k < x.size(d); ++k)
      for (int64_t base : g.channels) next.push_back(base + k * x.stride(d));
    g.channels = std::move(next);
  }
  return g;
}

constexpr int64_t kResizeRowsPerTask = 16;

// Where the values of a box go: channel c's row r starts at base + channel_at(c) + r * row_step,
// its columns col_step apart (a sample's box in place, or a box-sized buffer).
template <typename T>
struct BoxDestination {
  T* base;
  const int64_t* channel_offsets;  // per channel, or null: c * channel_step
  int64_t channel_step, row_step, col_step;
  int64_t channel_at(int64_t c) const { return channel_offsets != nullptr ? channel_offsets[c] : c * channel_step; }
};

// A sample's own box, in place (box: y0, y1, x0, x1).
template <typename T>
BoxDestination<T> sample_box(T* sample, const ImageGeometry& g, const int64_t* box) {
  return {sample + box[0] * g.source.row_stride + box[2] * g.source.col_stride, g.channels.data(), 0,
          g.source.row_stride, g.source.col_stride};
}

// The box (rows x cols) of src (an image laid out as the batch's) resized, written to dst: one
// template instance per element type, the rows split over the threads.
template <typename T>
void resize_box(const T* src, const ImageGeometry& g, int64_t rows, int64_t cols, bool nearest,
                const BoxDestination<T>& dst) {
  using acc_t = typename AccType<T>::type;
  if (rows <= 0 || cols <= 0) return;
  const ResizeTaps<acc_t> taps(g.source, rows, cols, nearest, vector_window<T>());
  const int64_t tasks = static_cast<int64_t>(g.channels.size()) * rows;
  at::parallel_for(0, tasks, kResizeRowsPerTask, [&](int64_t t0, int64_t t1) {
    WidthPassCache cache;  // (a task's rows are consecutive rows of one or two channels)
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t c = t / rows, r = t % rows;
      resize_box_row(src + g.channels[c], g.source, taps, r, dst.base + dst.channel_at(c) + r * dst.row_step,
                     dst.col_step, cache);
    }
  });
}

// dst's box <- src resized.
template <typename T>
void resize_into_box(T* dst, const T* src, const ImageGeometry& g, const SampleView& s) {
  resize_box(src, g, s.box[1] - s.box[0], s.box[3] - s.box[2], s.kind == kResizeNearest, sample_box(dst, g, s.box));
}

// Runs the plan a step at a time over whole samples of a dense batch: the other kinds' steps as
// the dense chunks run them (use_chunks), else (a contiguous batch whose rows a paste cannot use)
// as the strided path runs them. Either way a saved sample has the batch's layout, which a resize
// reads with the batch's geometry. any_mask: as mix_inplace's.
template <typename T>
void mix_inplace_by_sample(const at::Tensor& images, const DenseLayout& dense, bool use_chunks,
                           const std::vector<PlanStep>& plan, const Params& p, bool any_mask) {
  T* data = images.data_ptr<T>();
  const ImageGeometry geometry = describe_image(images);
  std::vector<T> saved;  // a cycle's first sample, allocated with the first cycle
  std::vector<T> box;    // a pair's box (channels x rows x cols)
  auto sample = [&](int64_t i) { return data + i * dense.batch_stride; };
  int64_t chunk = dense_chunk_elems(dense.numel, sizeof(T));
  if (dense.paste_ok && dense.row_len <= chunk) chunk = (chunk / dense.row_len) * dense.row_len;
  const int64_t num_chunks = (dense.numel + chunk - 1) / chunk;
  const StridedLayout strided = use_chunks ? StridedLayout{} : describe_strided(images);
  if (!use_chunks) saved.resize(static_cast<size_t>(dense.numel));  // the strided path's pairs go through it
  // A step of any other kind, over every position.
  auto position_step = [&](const PlanStep& step) {
    const std::vector<PlanStep> one{step};
    if (!use_chunks) return strided_chunk(data, strided, one, p, int64_t{0}, strided.rows, saved.data());
    at::parallel_for(0, num_chunks, 1, [&](int64_t c0, int64_t c1) {
      MaskScratch<T> ms(any_mask);
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t e0 = c * chunk, e1 = std::min(dense.numel, e0 + chunk);
        dense_chunk(data, dense, one, p, e0, e1, saved.data() + e0, ms);
      }
    });
  };
  for (const PlanStep& step : plan) {
    const SampleView sa = sample_view(p, step.a);
    if (step.op == StepOp::kSave) {
      saved.resize(static_cast<size_t>(dense.numel));
      position_step(step);
    } else if (step.op == StepOp::kApply || step.op == StepOp::kApplyFromBuffer) {
      if (!resizes(sa.kind)) position_step(step);
      else resize_into_box(sample(step.a), step.op == StepOp::kApply ? sample(step.b) : saved.data(), geometry, sa);
    } else {  // kPair
      const SampleView sb = sample_view(p, step.b);
      if (!resizes(sa.kind) && !resizes(sb.kind)) {
        position_step(step);
        continue;
      }
      // The resizing side r takes its box from o's original, kept in `box` until o is written.
      const bool a_resizes = resizes(sa.kind);
      const int64_t r = a_resizes ? step.a : step.b, o = a_resizes ? step.b : step.a;
      const SampleView& sr = a_resizes ? sa : sb;
      const SampleView& so = a_resizes ? sb : sa;
      const int64_t rows = std::max<int64_t>(0, sr.box[1] - sr.box[0]), cols = std::max<int64_t>(0, sr.box[3] - sr.box[2]);
      box.resize(static_cast<size_t>(geometry.channels.size() * rows * cols));
      resize_box(static_cast<const T*>(sample(o)), geometry, rows, cols, sr.kind == kResizeNearest,
                 BoxDestination<T>{box.data(), nullptr, rows * cols, cols, 1});
      if (resizes(so.kind)) resize_into_box(sample(o), static_cast<const T*>(sample(r)), geometry, so);
      else position_step({StepOp::kApply, o, r});
      // The held box into r's (one thread: a copy of one box).
      const BoxDestination<T> into = sample_box(sample(r), geometry, sr.box);
      for (int64_t c = 0; c < static_cast<int64_t>(geometry.channels.size()); ++c)
        for (int64_t q = 0; q < rows; ++q) {
          T* out = into.base + into.channel_at(c) + q * into.row_step;
          const T* held = box.data() + (c * rows + q) * cols;
          if (into.col_step == 1) std::memcpy(out, held, cols * sizeof(T));
          else for (int64_t k = 0; k < cols; ++k) out[k * into.col_step] = held[k];
        }
    }
  }
}

// Applies the plan to the images in place (mix_kernels.cuh's mix_inplace, which builds its plan too).
// any_spatial: some mixed sample pastes or masks (the dense path then needs rows and columns);
// any_mask: some mixed sample masks (the threads then need MaskScratch).
template <typename T>
void mix_inplace(const at::Tensor& images, const std::vector<PlanStep>& plan, const Params& p,
                 bool any_spatial, bool any_mask, bool any_resize) {
  T* data = images.data_ptr<T>();
  DenseLayout dense;
  const bool dense_ok = describe_dense(images, &dense) && (!any_spatial || dense.paste_ok);
  if (any_resize) {
    if (dense_ok || images.is_contiguous())
      return mix_inplace_by_sample<T>(images, dense, dense_ok, plan, p, any_mask);
    // A rare layout (interleaved samples, gaps) with a resize: mixed in a contiguous copy.
    const at::Tensor copy = images.contiguous();
    mix_inplace<T>(copy, plan, p, any_spatial, any_mask, true);
    images.copy_(copy);
    return;
  }
  if (dense_ok) {
    // Swapped pairs run last, a pair at a time over whole samples: a pair reads and writes only
    // its own two samples, so it needs no chunking (measured: Mixup 1.00-1.05 of the floor, was
    // 1.09-1.14 walked chunk by chunk) and a box is walked in one go, rows prefetched ahead.
    // Pairs that blend stay in the chunks when there are too few pairs to keep every thread
    // busy. Last is safe: a plan's trees, which read originals, come first, and a pair shares no
    // sample with any other step.
    int64_t num_pairs = 0;
    for (const PlanStep& step : plan) num_pairs += step.op == StepOp::kPair;
    const bool all_pairs_whole = num_pairs >= 2 * static_cast<int64_t>(at::get_num_threads());
    std::vector<PlanStep> chunked, whole_pairs;
    for (const PlanStep& step : plan) {
      const bool whole = step.op == StepOp::kPair &&
                         (all_pairs_whole || (p.kind[step.a] != kBlend && p.kind[step.b] != kBlend));
      (whole ? whole_pairs : chunked).push_back(step);
    }
    // Chunks hold whole rows when rows are short, so a paste rarely splits a row.
    int64_t chunk = dense_chunk_elems(dense.numel, sizeof(T));
    if (dense.row_len <= chunk) chunk = (chunk / dense.row_len) * dense.row_len;
    const int64_t num_chunks = chunked.empty() ? 0 : (dense.numel + chunk - 1) / chunk;
    at::parallel_for(0, num_chunks, 1, [&](int64_t c0, int64_t c1) {
      std::vector<T> buf(static_cast<size_t>(std::min(chunk, dense.numel)));
      MaskScratch<T> ms(any_mask);
      for (int64_t c = c0; c < c1; ++c)
        dense_chunk(data, dense, chunked, p, c * chunk, std::min(dense.numel, (c + 1) * chunk), buf.data(), ms);
    });
    at::parallel_for(0, static_cast<int64_t>(whole_pairs.size()), 1, [&](int64_t s0, int64_t s1) {
      MaskScratch<T> ms(any_mask);
      for (int64_t s = s0; s < s1; ++s) {
        const PlanStep& step = whole_pairs[s];
        pair_dense(data + step.a * dense.batch_stride, data + step.b * dense.batch_stride, sample_view(p, step.a),
                   sample_view(p, step.b), dense, int64_t{0}, dense.numel, ms);
      }
    });
    return;
  }
  const StridedLayout g = describe_strided(images);
  const int64_t rows_per_chunk =
      std::max<int64_t>(1, kStridedChunkBytes / static_cast<int64_t>(sizeof(T)) / g.inner_len);
  const int64_t num_chunks = (g.rows + rows_per_chunk - 1) / rows_per_chunk;
  at::parallel_for(0, num_chunks, 1, [&](int64_t c0, int64_t c1) {
    std::vector<T> buf(static_cast<size_t>(rows_per_chunk * g.inner_len));
    for (int64_t c = c0; c < c1; ++c)
      strided_chunk(data, g, plan, p, c * rows_per_chunk, std::min(g.rows, (c + 1) * rows_per_chunk), buf.data());
  });
}

// `device_plan` (the schema's plan: the CUDA kernels', when a caller passes one) is checked and
// ignored: the chunks walk make_inplace_plan's steps, built here.
void mix_cpu_(const at::Tensor& images, const at::Tensor& partner, const at::Tensor& lam,
              const at::Tensor& kind, const at::Tensor& box, const std::optional<at::Tensor>& device_plan,
              at::IntArrayRef plan_shape, const std::optional<at::Tensor>& pixel_mask,
              const std::optional<at::Tensor>& mask_field, const std::optional<at::Tensor>& field_threshold) {
  check_mix_args(images, partner, lam, kind, box, device_plan, plan_shape, pixel_mask, mask_field, field_threshold);
  const at::Tensor partner_c = partner.contiguous(), lam_c = lam.contiguous(),
                   kind_c = kind.contiguous(), box_c = box.contiguous();
  if (images.numel() == 0) return;
  const int64_t batch = images.size(0);

  // A MASK sample has a pixel_mask, whose planes are read where they are (any batch stride), or a
  // mask_field (checked): cut where a dense layout's rows read it, else into planes first.
  const at::Tensor threshold_c = field_threshold.has_value() ? field_threshold->contiguous() : at::Tensor();
  at::Tensor field_rows_twice;
  const MaskField field = mask_field_of(mask_field, threshold_c, field_rows_twice);
  DenseLayout dense;
  const bool cut_in_rows = mask_field.has_value() && describe_dense(images, &dense) && dense.paste_ok;
  const std::optional<at::Tensor> planes =
      mask_field.has_value() && !cut_in_rows
          ? std::optional<at::Tensor>(field_pixel_mask(field, kind_c.data_ptr<uint8_t>(), box_c.data_ptr<int64_t>(), batch))
          : pixel_mask;
  const Params p{partner_c.data_ptr<int64_t>(), lam_c.data_ptr<float>(),
                 kind_c.data_ptr<uint8_t>(), box_c.data_ptr<int64_t>(),
                 planes.has_value() ? planes->data_ptr<uint8_t>() : nullptr,
                 planes.has_value() ? planes->stride(0) : 0, cut_in_rows ? field : MaskField{}};
  const std::vector<PlanStep> plan = make_inplace_plan(p.partner, p.kind, batch);
  if (plan.empty()) return;
  bool any_paste = false, any_mask = false, any_resize = false;
  for (int64_t i = 0; i < batch; ++i) {
    const bool changed = mixed(p.partner, p.kind, i);
    any_paste |= changed && p.kind[i] == kPaste;
    any_mask |= changed && p.kind[i] == kMask;
    any_resize |= changed && resizes(p.kind[i]);
  }

  AT_DISPATCH_FLOATING_TYPES_AND3(at::kByte, at::kHalf, at::kBFloat16, images.scalar_type(), "fastmix_mix_cpu", [&] {
    mix_inplace<scalar_t>(images, plan, p, any_paste || any_mask, any_mask, any_resize);
  });
}

// fastmix::device_plan: make_device_plan's buffer, for the CUDA kernels (fastmix.Mixup builds it
// beside the params and copies both to the GPU at once).
at::Tensor device_plan_cpu(const at::Tensor& partner, const at::Tensor& lam, const at::Tensor& kind,
                           const at::Tensor& box) {
  check_device_plan_args(partner, lam, kind, box);
  const at::Tensor partner_c = partner.contiguous(), lam_c = lam.contiguous(), kind_c = kind.contiguous(),
                   box_c = box.contiguous();
  const DevicePlan plan = make_device_plan(partner_c.data_ptr<int64_t>(), lam_c.data_ptr<float>(),
                                           kind_c.data_ptr<uint8_t>(), box_c.data_ptr<int64_t>(), partner.size(0));
  at::Tensor out = at::empty({plan.bytes()}, partner.options().dtype(at::kByte));
  plan.write(out.data_ptr<uint8_t>());
  return out;
}

// fastmix::inplace_plan: make_inplace_plan's steps as (n, 3) int64 rows (op, a, b), for numba.
at::Tensor inplace_plan_cpu(const at::Tensor& partner, const at::Tensor& kind) {
  check_inplace_plan_args(partner, kind);
  const at::Tensor partner_c = partner.contiguous(), kind_c = kind.contiguous();
  const std::vector<PlanStep> plan =
      make_inplace_plan(partner_c.data_ptr<int64_t>(), kind_c.data_ptr<uint8_t>(), partner.size(0));
  at::Tensor out = at::empty({static_cast<int64_t>(plan.size()), 3}, partner.options().dtype(at::kLong));
  int64_t* row = out.data_ptr<int64_t>();
  for (const PlanStep& step : plan) {
    *row++ = static_cast<int64_t>(step.op);
    *row++ = step.a;
    *row++ = step.b;
  }
  return out;
}

}  // namespace
}  // namespace cpu
}  // namespace fastmix

TORCH_LIBRARY_IMPL(fastmix, CPU, m) {
  m.impl("mix_", &fastmix::cpu::mix_cpu_);
  m.impl("device_plan", &fastmix::cpu::device_plan_cpu);
  m.impl("inplace_plan", &fastmix::cpu::inplace_plan_cpu);
}
// The plans are built on the host: given CUDA tensors, the same kernels refuse them by name (the
// dispatcher would otherwise say that no CUDA kernel exists).
TORCH_LIBRARY_IMPL(fastmix, CUDA, m) {
  m.impl("device_plan", &fastmix::cpu::device_plan_cpu);
  m.impl("inplace_plan", &fastmix::cpu::inplace_plan_cpu);
}
