// Every argument check of the fastmix ops, shared by the CPU and CUDA implementations, and
// mirrored name for name and word for word by fastmix/backends/checks.py for the Python backends:
// "argument: expected X, got Y". Each op calls one check of its arguments (check_mix_args,
// check_mix_into_args, check_collate_mix_args, check_mix_targets_args) before the first write, so
// a refused call leaves the caller's tensors as they were.
//
// Parameter *values* (partner, kind, lam, box, class indices, scale and bias) are read only on the
// CPU: on CUDA reading them would synchronise with the device (the kernels assert instead).
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/zeros.h>
#include <c10/core/InferenceMode.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "mix_plan.h"

namespace fastmix {

// A dtype as torch names it in Python (int64, float32, ...): dtype_name in Python.
struct DtypeName {
  c10::ScalarType dtype;
};
inline std::ostream& operator<<(std::ostream& os, DtypeName d) {
  switch (d.dtype) {
    case at::kByte: return os << "uint8";
    case at::kChar: return os << "int8";
    case at::kShort: return os << "int16";
    case at::kInt: return os << "int32";
    case at::kLong: return os << "int64";
    case at::kHalf: return os << "float16";
    case at::kBFloat16: return os << "bfloat16";
    case at::kFloat: return os << "float32";
    case at::kDouble: return os << "float64";
    case at::kBool: return os << "bool";
    case at::kComplexFloat: return os << "complex64";
    case at::kComplexDouble: return os << "complex128";
    default: return os << c10::toString(d.dtype);
  }
}

// A shape or strides as a Python tuple: (4,), (4, 3, 8, 8).
struct Tuple {
  at::IntArrayRef values;
};
inline std::ostream& operator<<(std::ostream& os, Tuple t) {
  os << "(";
  for (size_t i = 0; i < t.values.size(); ++i) os << (i ? ", " : "") << t.values[i];
  return os << (t.values.size() == 1 ? ",)" : ")");
}

// A float as Python's float_text prints it: `digits` significant digits, no trailing
// zeros (1.5, 2, -0.1, nan, inf): 8 for a float32 (lam), 15 for a double (smoothing).
struct FloatText {
  double value;
  int digits;
};
inline std::ostream& operator<<(std::ostream& os, FloatText f) {
  if (std::isnan(f.value)) return os << "nan";  // (not "-nan": Python prints every NaN as nan)
  if (std::isinf(f.value)) return os << (f.value < 0 ? "-inf" : "inf");
  const std::streamsize before = os.precision(f.digits);
  os << f.value;
  os.precision(before);
  return os;
}

inline bool is_image_dtype(c10::ScalarType dtype) {
  return dtype == at::kByte || dtype == at::kHalf || dtype == at::kBFloat16 || dtype == at::kFloat ||
         dtype == at::kDouble;
}

inline bool is_input_dtype(c10::ScalarType dtype) { return dtype == at::kByte || dtype == at::kFloat; }

inline bool is_out_dtype(c10::ScalarType dtype) {
  return dtype == at::kByte || dtype == at::kFloat || dtype == at::kBFloat16 || dtype == at::kHalf;
}

// Whose device an argument must be on: "the images' device", "out's device" (device_of in Python).
struct DeviceOf {
  const char* data_name;
};
inline std::ostream& operator<<(std::ostream& os, DeviceOf d) {
  const std::string name(d.data_name);
  if (!name.empty() && name.back() == 's') return os << "the " << name << "' device";
  return os << name << "'s device";
}

// t on the data's device (images, out or labels).
inline void check_on_device(const std::string& name, const at::Tensor& t, const at::Tensor& data,
                            const char* data_name) {
  TORCH_CHECK_VALUE(t.device() == data.device(), name, ": expected a tensor on ", DeviceOf{data_name}, " ",
                    data.device(), ", got ", t.device());
}

// The dtype and shape of one field of a MixParams, and its device against the data's.
inline void check_param_field(const char* name, const at::Tensor& t, c10::ScalarType dtype,
                              std::vector<int64_t> shape, const at::Tensor& data, const char* data_name) {
  TORCH_CHECK_VALUE(t.scalar_type() == dtype && t.sizes() == at::IntArrayRef(shape), name, ": expected ",
                    DtypeName{dtype}, " of shape ", Tuple{shape}, ", got ", DtypeName{t.scalar_type()},
                    " of shape ", Tuple{t.sizes()});
  check_on_device(name, t, data, data_name);
}

// Shapes, dtypes and devices of a MixParams against the batch (B, ...) it is applied to.
inline void check_params_layout(const at::Tensor& images, const at::Tensor& partner, const at::Tensor& lam,
                                const at::Tensor& kind, const at::Tensor& box, const char* data_name = "images") {
  TORCH_CHECK_VALUE(images.dim() >= 1, data_name, ": expected a batch dim (B, ...), got a 0-d tensor");
  const int64_t batch = images.size(0);
  check_param_field("partner", partner, at::kLong, {batch}, images, data_name);
  check_param_field("lam", lam, at::kFloat, {batch}, images, data_name);
  check_param_field("kind", kind, at::kByte, {batch}, images, data_name);
  check_param_field("box", box, at::kLong, {batch, 4}, images, data_name);
}

inline void check_partner_value(const int64_t* partner, int64_t i, int64_t batch) {
  TORCH_CHECK_VALUE(partner[i] >= 0 && partner[i] < batch, "partner[", i, "]: expected an index in [0, ", batch,
                    "), got ", partner[i]);
}

// The kinds an op accepts (KIND_NAMES and MAX_KIND in Python).
constexpr const char* kKindNames = "0 (none), 1 (blend), 2 (paste), 3 (mask), 4 (resize) or 5 (resize nearest)";
constexpr uint8_t kMaxKind = kResizeNearest;

// The kinds that need (H, W), as a message names them.
inline const char* spatial_kind_words(uint8_t kind) {
  switch (kind) {
    case kPaste: return "paste (CutMix)";
    case kMask: return "mask (FMix, ClassMix)";
    case kResize: return "resize (ResizeMix)";
    default: return "resize nearest (ResizeMix)";
  }
}

inline void check_kind_value(const uint8_t* kind, int64_t i) {
  TORCH_CHECK_VALUE(kind[i] <= kMaxKind, "kind[", i, "]: expected ", kKindNames, ", got ", static_cast<int>(kind[i]));
}

inline void check_kind_and_lam_values(const uint8_t* kind, const float* lam, int64_t i) {
  check_kind_value(kind, i);
  TORCH_CHECK_VALUE(std::isfinite(lam[i]) && lam[i] >= 0.f && lam[i] <= 1.f, "lam[", i,
                    "]: expected a value in [0, 1], got ", FloatText{lam[i], 8});
}

// Values of a MixParams held on the host (contiguous CPU tensors), for images (B, ...): partner in
// [0, B), kind 0 to 5, lam in [0, 1], the box of a paste or a resize inside (H, W) (every kind but
// none and blend needs images of 3 dims or more).
inline void check_params_values(const at::Tensor& images, const at::Tensor& partner, const at::Tensor& lam,
                                const at::Tensor& kind, const at::Tensor& box) {
  const int64_t batch = images.size(0);
  const int64_t* p = partner.data_ptr<int64_t>();
  const float* l = lam.data_ptr<float>();
  const uint8_t* k = kind.data_ptr<uint8_t>();
  const int64_t* b = box.data_ptr<int64_t>();
  const bool spatial = images.dim() >= 3;
  const int64_t height = spatial ? images.size(-2) : 0, width = spatial ? images.size(-1) : 0;
  for (int64_t i = 0; i < batch; ++i) {
    check_partner_value(p, i, batch);
    check_kind_and_lam_values(k, l, i);
    if (k[i] == kNone || k[i] == kBlend) continue;
    TORCH_CHECK_VALUE(spatial, "kind[", i, "]: ", spatial_kind_words(k[i]),
                      " needs images of shape (B, ..., H, W), got images of shape ", Tuple{images.sizes()});
    if (!writes_box(k[i])) continue;  // a mask's pixels are its pixel_mask plane (check_pixel_mask)
    const int64_t* bi = b + 4 * i;
    TORCH_CHECK_VALUE(0 <= bi[0] && bi[0] <= bi[1] && bi[1] <= height && 0 <= bi[2] && bi[2] <= bi[3] && bi[3] <= width,
                      "box[", i, "]: expected (y0, y1, x0, x1) with 0 <= y0 <= y1 <= ", height,
                      " and 0 <= x0 <= x1 <= ", width, ", got (", bi[0], ", ", bi[1], ", ", bi[2], ", ", bi[3], ")");
  }
}

// Whether two elements of x may lie at one address (an in-place mix of such a tensor races with
// itself). With the dims of size > 1 in order of stride, x's elements are all distinct when each
// stride exceeds the farthest offset the smaller dims reach: exact for every layout that views,
// slices, permutes and transposes make, and true for expand() (a zero stride) and overlapping
// windows (unfold with a step under the window). torch's has_internal_overlap only proves the
// first: it answers "too hard" for every strided view.
inline bool elements_may_share_memory(const at::Tensor& x) {
  if (x.is_non_overlapping_and_dense()) return false;
  std::vector<std::pair<int64_t, int64_t>> dims;  // (stride, size)
  for (int64_t d = 0; d < x.dim(); ++d)
    if (x.size(d) > 1) dims.emplace_back(x.stride(d), x.size(d));
  std::sort(dims.begin(), dims.end());
  int64_t reach = 0;  // the farthest offset the dims so far reach
  for (const auto& [stride, size] : dims) {
    if (stride <= reach) return true;
    reach += stride * (size - 1);
  }
  return false;
}

// torch's rule for every in-place op, applied before anything is written: an inference tensor
// (made under torch.inference_mode()) may be written only inside inference mode. A custom op's
// kernel is not held to it by the dispatcher, and torch's own ops write first and raise after.
inline void check_writable_here(const at::Tensor& t, const char* name) {
  TORCH_CHECK_VALUE(!t.is_inference() || c10::InferenceMode::is_enabled(), name,
                    ": expected a tensor that may be written in place here, got an inference tensor (made under "
                    "torch.inference_mode()) outside inference mode; mix it inside torch.inference_mode() or pass ",
                    name, ".clone()");
}

// images of mix_: a supported dtype, elements that do not share memory, and writable here (it
// is written in place).
inline void check_writable_images(const at::Tensor& images) {
  TORCH_CHECK_TYPE(is_image_dtype(images.scalar_type()),
                   "images: expected dtype uint8, float16, bfloat16, float32 or float64, got ",
                   DtypeName{images.scalar_type()});
  TORCH_CHECK_VALUE(images.dim() >= 1, "images: expected a batch dim (B, ...), got a 0-d tensor");
  TORCH_CHECK_VALUE(!elements_may_share_memory(images),
                    "images: expected a tensor whose elements do not share memory (it is written in place), got one "
                    "with strides ", Tuple{images.strides()}, " for shape ", Tuple{images.sizes()},
                    " (from expand() or overlapping windows such as unfold()?); call .contiguous() first");
  check_writable_here(images, "images");
}

// scale and bias on out's device; when both are empty (no normalisation) a CPU tensor will do too
// (torch.empty(0) for a CUDA out: the CUDA op reads nothing from them).
inline void check_affine_devices(const at::Tensor& out, const at::Tensor& scale, const at::Tensor& bias,
                                 bool normalize) {
  auto misplaced = [&](const at::Tensor& t) { return t.device() != out.device() && (normalize || !t.device().is_cpu()); };
  TORCH_CHECK_VALUE(!misplaced(scale) && !misplaced(bias), "scale, bias: expected tensors on out's device ",
                    out.device(), ", got ", scale.device(), " and ", bias.device());
}

// out (B, C, H, W) contiguous or channels_last of a supported dtype, the params for it, and
// scale/bias both empty or float32 (C,) on out's device. Returns whether out is channels_last.
inline bool check_out_params_and_affine(const at::Tensor& out, const at::Tensor& partner, const at::Tensor& lam,
                                        const at::Tensor& kind, const at::Tensor& box, const at::Tensor& scale,
                                        const at::Tensor& bias, bool uint8_input) {
  TORCH_CHECK_VALUE(out.dim() == 4, "out: expected shape (B, C, H, W), got ", Tuple{out.sizes()});
  TORCH_CHECK_TYPE(is_out_dtype(out.scalar_type()), "out: expected dtype uint8, float32, bfloat16 or float16, got ",
                   DtypeName{out.scalar_type()});
  check_params_layout(out, partner, lam, kind, box, "out");
  const int64_t channels = out.size(1);
  const bool normalize = scale.numel() > 0 || bias.numel() > 0;
  TORCH_CHECK_VALUE(!normalize || (scale.sizes() == at::IntArrayRef({channels}) &&
                                   bias.sizes() == at::IntArrayRef({channels})),
                    "scale, bias: expected both empty or both of shape (", channels, ",), got ", Tuple{scale.sizes()},
                    " and ", Tuple{bias.sizes()});
  TORCH_CHECK_TYPE(!normalize || (scale.scalar_type() == at::kFloat && bias.scalar_type() == at::kFloat),
                   "scale, bias: expected float32, got ", DtypeName{scale.scalar_type()}, " and ",
                   DtypeName{bias.scalar_type()});
  check_affine_devices(out, scale, bias, normalize);
  TORCH_CHECK_VALUE(out.scalar_type() != at::kByte || (uint8_input && !normalize),
                    "out: expected a float dtype (uint8 output needs uint8 input and no scale/bias), got uint8");
  if (normalize && scale.device().is_cpu()) {  // values on the host only: a GPU read would sync
    const at::Tensor s = scale.contiguous(), b = bias.contiguous();
    const float* sv = s.data_ptr<float>();
    const float* bv = b.data_ptr<float>();
    for (int64_t c = 0; c < channels; ++c)
      TORCH_CHECK_VALUE(std::isfinite(sv[c]) && std::isfinite(bv[c]), "scale, bias: expected finite values, got scale[",
                        c, "] = ", FloatText{sv[c], 8}, " and bias[", c, "] = ", FloatText{bv[c], 8});
  }
  const bool channels_last = !out.is_contiguous() && out.is_contiguous(at::MemoryFormat::ChannelsLast);
  TORCH_CHECK_VALUE(out.is_contiguous() || channels_last, "out: expected a contiguous or channels_last tensor, got strides ",
                    Tuple{out.strides()});
  check_writable_here(out, "out");
  return channels_last;
}

// [address of the first byte, one past the last) of a non-empty strided tensor.
inline std::pair<const char*, const char*> byte_span(const at::Tensor& t) {
  int64_t last = 0;  // the offset of the last element, in elements
  for (int64_t d = 0; d < t.dim(); ++d) last += (t.size(d) - 1) * t.stride(d);
  const char* low = static_cast<const char*>(t.data_ptr());
  return {low, low + (last + 1) * static_cast<int64_t>(t.element_size())};
}

// (span bytes,) bool: which bytes of its span an element of t covers.
inline at::Tensor covered_bytes(const at::Tensor& t) {
  const auto [low, high] = byte_span(t);
  at::Tensor covered = at::zeros({high - low}, at::TensorOptions().dtype(at::kBool));
  std::vector<int64_t> byte_strides(t.strides().begin(), t.strides().end());
  for (auto& s : byte_strides) s *= static_cast<int64_t>(t.element_size());
  for (int64_t k = 0; k < static_cast<int64_t>(t.element_size()); ++k)  // byte k of every element
    covered.as_strided(t.sizes(), byte_strides, k).fill_(true);
  return covered;
}

// Whether some byte belongs to an element of a and to an element of b (an empty tensor covers
// none). Exact: where the spans of the two meet and either has gaps in its span (x[:, ::2] beside
// x[:, 1::2]), the bytes of each are marked in a map of its span and the maps compared over the
// common part. Addresses, not storages, are compared: two storages over the same memory (numpy
// views given to torch.from_numpy) overlap too. Meta and fake tensors have no memory (null data).
// Not at::get_overlap_status: it answers "too hard" for every view that is not dense (a strided
// sample such as x[::2] or an as_strided view), which would let such a view of out through.
inline bool bytes_overlap(const at::Tensor& a, const at::Tensor& b) {
  if (a.numel() == 0 || b.numel() == 0 || !a.has_storage() || !b.has_storage() || a.device() != b.device() ||
      a.storage().data() == nullptr || b.storage().data() == nullptr)
    return false;
  const auto [a_low, a_high] = byte_span(a);
  const auto [b_low, b_high] = byte_span(b);
  const char* low = std::max(a_low, b_low);
  const char* high = std::min(a_high, b_high);
  if (low >= high) return false;
  if (a.is_non_overlapping_and_dense() && b.is_non_overlapping_and_dense()) return true;  // each covers its span
  const at::Tensor in_a = covered_bytes(a).slice(0, low - a_low, high - a_low);
  const at::Tensor in_b = covered_bytes(b).slice(0, low - b_low, high - b_low);
  return in_a.logical_and(in_b).any().item<bool>();
}

inline void check_no_overlap_with_out(const at::Tensor& out, const at::Tensor& input, const char* name) {
  TORCH_CHECK_VALUE(!bytes_overlap(out, input), name,
                    ": expected memory apart from out's (out is written while it is read), got memory that overlaps it");
}

// images of mix_into_: the batch (B, C, H, W), or (B, H, W, C) when hwc, uint8 or float32, on
// out's device, not sharing memory with out.
inline void check_mix_into_images(const at::Tensor& out, const at::Tensor& images, bool hwc) {
  TORCH_CHECK_VALUE(out.dim() == 4, "out: expected shape (B, C, H, W), got ", Tuple{out.sizes()});
  const int64_t B = out.size(0), C = out.size(1), H = out.size(2), W = out.size(3);
  const std::vector<int64_t> expected = hwc ? std::vector<int64_t>{B, H, W, C} : std::vector<int64_t>{B, C, H, W};
  TORCH_CHECK_VALUE(images.sizes() == at::IntArrayRef(expected), "images: expected shape ", Tuple{expected}, " (",
                    hwc ? "B, H, W, C" : "B, C, H, W", "), got ", Tuple{images.sizes()});
  TORCH_CHECK_TYPE(is_input_dtype(images.scalar_type()), "images: expected dtype uint8 or float32, got ",
                   DtypeName{images.scalar_type()});
  TORCH_CHECK_VALUE(images.device() == out.device(), "images: expected a tensor on out's device ", out.device(),
                    ", got ", images.device());
  check_no_overlap_with_out(out, images, "images");
}

// samples of collate_mix_: B tensors (C, H, W), or (H, W, C) when hwc, of one dtype (uint8 or
// float32), on out's device, none sharing memory with out.
inline void check_collate_samples(const at::Tensor& out, at::TensorList samples, bool hwc) {
  TORCH_CHECK_VALUE(out.dim() == 4, "out: expected shape (B, C, H, W), got ", Tuple{out.sizes()});
  const int64_t B = out.size(0), C = out.size(1), H = out.size(2), W = out.size(3);
  TORCH_CHECK_VALUE(static_cast<int64_t>(samples.size()) == B, "samples: expected ", B,
                    " tensors (out's batch size), got ", samples.size());
  if (B == 0) return;
  const std::vector<int64_t> expected = hwc ? std::vector<int64_t>{H, W, C} : std::vector<int64_t>{C, H, W};
  const c10::ScalarType dtype = samples[0].scalar_type();
  TORCH_CHECK_TYPE(is_input_dtype(dtype), "samples[0]: expected dtype uint8 or float32, got ", DtypeName{dtype});
  for (int64_t i = 0; i < B; ++i) {
    const at::Tensor& s = samples[i];
    TORCH_CHECK_VALUE(s.sizes() == at::IntArrayRef(expected) && s.scalar_type() == dtype, "samples[", i, "]: expected ",
                      DtypeName{dtype}, " of shape ", Tuple{expected}, " like samples[0], got ",
                      DtypeName{s.scalar_type()}, " of shape ", Tuple{s.sizes()});
    check_on_device("samples[" + std::to_string(i) + "]", s, out, "out");
  }
  for (int64_t i = 0; i < B; ++i) {
    const std::string name = "samples[" + std::to_string(i) + "]";
    check_no_overlap_with_out(out, samples[i], name.c_str());
  }
}

// The most classes a (B, num_classes) float32 target tensor may have: int32's maximum
// (MAX_NUM_CLASSES in Python, where the bound is argued). Past it a call could only fail.
constexpr int64_t kMaxNumClasses = 2147483647;

inline void check_num_classes_and_smoothing(int64_t num_classes, double smoothing) {
  TORCH_CHECK_VALUE(num_classes >= 1 && num_classes <= kMaxNumClasses, "num_classes: expected an int in [1, ",
                    kMaxNumClasses, "], got ", num_classes);
  TORCH_CHECK_VALUE(smoothing >= 0.0 && smoothing <= 1.0, "smoothing: expected a float in [0, 1], got ",
                    FloatText{smoothing, 15});
}

// (B,) integer class indices or (B, num_classes) dense real targets.
inline void check_labels_layout(const at::Tensor& labels, int64_t num_classes) {
  TORCH_CHECK_VALUE(labels.dim() == 1 || labels.dim() == 2,
                    "labels: expected class indices of shape (B,) or dense targets of shape (B, ", num_classes,
                    "), got shape ", Tuple{labels.sizes()});
  TORCH_CHECK_TYPE(!at::isComplexType(labels.scalar_type()), "labels: expected real values, got ",
                   DtypeName{labels.scalar_type()});
  if (labels.dim() == 1) {
    TORCH_CHECK_TYPE(!at::isFloatingType(labels.scalar_type()) && labels.scalar_type() != at::kBool,
                     "labels: expected integer class indices for 1-D labels, got ", DtypeName{labels.scalar_type()},
                     " (pass dense targets as (", labels.size(0), ", ", num_classes, "))");
  } else {
    TORCH_CHECK_VALUE(labels.size(1) == num_classes, "labels: expected dense targets with num_classes=", num_classes,
                      " columns, got shape ", Tuple{labels.sizes()});
  }
}

// Values of the params of mix_targets, held on the host (no boxes: targets do not use them).
inline void check_targets_params_values(const at::Tensor& partner, const at::Tensor& lam, const at::Tensor& kind) {
  const int64_t batch = partner.size(0);
  const at::Tensor partner_c = partner.contiguous(), lam_c = lam.contiguous(), kind_c = kind.contiguous();
  const int64_t* p = partner_c.data_ptr<int64_t>();
  const float* l = lam_c.data_ptr<float>();
  const uint8_t* k = kind_c.data_ptr<uint8_t>();
  for (int64_t i = 0; i < batch; ++i) {
    check_partner_value(p, i, batch);
    check_kind_and_lam_values(k, l, i);
  }
}

// (B,) class indices of the CPU in [0, num_classes), compared in int64 (which holds both the index
// and the bound whatever the labels' integer dtype).
inline void check_class_indices(const at::Tensor& labels, int64_t num_classes) {
  const at::Tensor wide = labels.to(at::kLong).contiguous();
  const int64_t* y = wide.data_ptr<int64_t>();
  const bool unsigned64 = labels.scalar_type() == at::kUInt64;  // 2**63 and up read as negative
  for (int64_t i = 0; i < wide.numel(); ++i) {
    if (y[i] >= 0 && y[i] < num_classes) continue;
    if (unsigned64 && y[i] < 0)
      TORCH_CHECK_VALUE(false, "labels[", i, "]: expected a class index in [0, ", num_classes, ") (num_classes=",
                        num_classes, "), got ", static_cast<uint64_t>(y[i]));
    TORCH_CHECK_VALUE(false, "labels[", i, "]: expected a class index in [0, ", num_classes, ") (num_classes=",
                      num_classes, "), got ", y[i]);
  }
}

// plan and plan_shape of mix_: no plan (and no shape), or a plan of fastmix::device_plan -- uint8,
// one dim, on the images' device -- with the kPlanShapeFields fields of its header for the images'
// batch, and the bytes they need. Its content is not read here (on CUDA that would sync: the
// kernel asserts it); the CPU kernels build their own plan and ignore it.
inline void check_plan_layout(const at::Tensor& images, const std::optional<at::Tensor>& plan,
                              at::IntArrayRef plan_shape) {
  if (!plan.has_value()) {
    TORCH_CHECK_VALUE(plan_shape.empty(), "plan_shape: expected [] without a plan, got ", Tuple{plan_shape});
    return;
  }
  const at::Tensor& p = *plan;
  TORCH_CHECK_VALUE(p.scalar_type() == at::kByte && p.dim() == 1,
                    "plan: expected uint8 of shape (n,) (the bytes of torch.ops.fastmix.device_plan), got ",
                    DtypeName{p.scalar_type()}, " of shape ", Tuple{p.sizes()});
  check_on_device("plan", p, images, "images");
  const int64_t batch = images.size(0);
  bool fits = plan_shape.size() == kPlanShapeFields && plan_shape[0] == batch && plan_shape[5] <= 1;
  for (size_t k = 0; fits && k < plan_shape.size(); ++k) fits = plan_shape[k] >= 0 && plan_shape[k] <= INT32_MAX;
  TORCH_CHECK_VALUE(fits, "plan_shape: expected the plan's ", kPlanShapeFields,
                    " header fields (batch, first_groups, second_groups, head_slots, steps, paste) for a batch of ",
                    batch, ", got ", Tuple{plan_shape});
  const int64_t needed = plan_bytes({plan_shape[0], plan_shape[1], plan_shape[2], plan_shape[3], plan_shape[4],
                                     plan_shape[5]});
  TORCH_CHECK_VALUE(p.numel() >= needed, "plan: expected at least ", needed, " bytes for plan_shape ",
                    Tuple{plan_shape}, ", got ", p.numel());
}

// partner of device_plan and inplace_plan: (B,) int64 on the CPU (the plans are built on the host).
inline void check_plan_partner(const at::Tensor& partner) {
  TORCH_CHECK_VALUE(partner.scalar_type() == at::kLong && partner.dim() == 1 && partner.device().is_cpu(),
                    "partner: expected int64 of shape (B,) on the CPU (the plan is built on the host), got ",
                    DtypeName{partner.scalar_type()}, " of shape ", Tuple{partner.sizes()}, " on ", partner.device());
  TORCH_CHECK_VALUE(partner.size(0) <= kMaxBatch, "partner: expected at most ", kMaxBatch,
                    " samples, got ", partner.size(0));
}

// The MASK samples' pixel masks: none, or (B, H, W) uint8 on the data's device, H and W the data's
// last two dims, each (H, W) plane dense (strides (W, 1)); the batch stride may be anything (0:
// one plane for every sample). A nonzero pixel comes from the partner. On the CPU, a MASK kind
// needs a pixel_mask (on a GPU reading kind would sync: the kernels assert instead).
inline void check_pixel_mask(const std::optional<at::Tensor>& pixel_mask, const at::Tensor& data,
                             const at::Tensor& kind, const char* data_name = "images") {
  if (!pixel_mask.has_value()) {
    if (!data.device().is_cpu() || data.dim() < 1 || data.size(0) == 0) return;
    const at::Tensor kind_c = kind.contiguous();
    const uint8_t* k = kind_c.data_ptr<uint8_t>();
    for (int64_t i = 0; i < kind_c.numel(); ++i)
      TORCH_CHECK_VALUE(k[i] != kMask, "pixel_mask: expected (B, H, W) uint8 masks, as kind[", i,
                        "] is 3 (mask), got None");
    return;
  }
  const at::Tensor& m = *pixel_mask;
  TORCH_CHECK_TYPE(m.scalar_type() == at::kByte, "pixel_mask: expected dtype uint8, got ", DtypeName{m.scalar_type()});
  TORCH_CHECK_VALUE(data.dim() >= 3, "pixel_mask: expected None for ", data_name, " of shape ", Tuple{data.sizes()},
                    " (no H, W dims), got a tensor");
  const std::vector<int64_t> expected{data.size(0), data.size(-2), data.size(-1)};
  TORCH_CHECK_VALUE(m.sizes() == at::IntArrayRef(expected), "pixel_mask: expected shape ", Tuple{expected},
                    " ((B, H, W) of ", data_name, "), got ", Tuple{m.sizes()});
  check_on_device("pixel_mask", m, data, data_name);
  const int64_t height = expected[1], width = expected[2];
  const bool dense = (height <= 1 || m.stride(1) == width) && (width <= 1 || m.stride(2) == 1);
  TORCH_CHECK_VALUE(dense, "pixel_mask: expected each (H, W) plane dense (strides (", width, ", 1)), got strides ",
                    Tuple{m.strides()});
}

// The MASK samples' pixels cut from one noise image (fastmix/backends/mask_field.py): mask_field
// (H, W) float32 contiguous and field_threshold (B,) float32 on the data's device, pixel_mask None;
// on the CPU, each MASK sample's box the window (dy, dy + H, dx, dx + W) with 0 <= dy < H and
// 0 <= dx < W.
inline void check_mask_field(const std::optional<at::Tensor>& mask_field,
                             const std::optional<at::Tensor>& field_threshold,
                             const std::optional<at::Tensor>& pixel_mask, const at::Tensor& data,
                             const at::Tensor& kind, const at::Tensor& box, const char* data_name = "images") {
  TORCH_CHECK_VALUE(!pixel_mask.has_value(),
                    "pixel_mask: expected None, as mask_field gives the MASK samples' pixels, got a tensor");
  TORCH_CHECK_VALUE(mask_field.has_value(),
                    "mask_field: expected an (H, W) float32 image, as field_threshold is given, got None");
  const at::Tensor& f = *mask_field;
  TORCH_CHECK_TYPE(f.scalar_type() == at::kFloat, "mask_field: expected dtype float32, got ", DtypeName{f.scalar_type()});
  TORCH_CHECK_VALUE(data.dim() >= 3, "mask_field: expected None for ", data_name, " of shape ", Tuple{data.sizes()},
                    " (no H, W dims), got a tensor");
  const int64_t height = data.size(-2), width = data.size(-1);
  const std::vector<int64_t> expected{height, width};
  TORCH_CHECK_VALUE(f.sizes() == at::IntArrayRef(expected), "mask_field: expected shape ", Tuple{expected},
                    " ((H, W) of ", data_name, "), got ", Tuple{f.sizes()});
  TORCH_CHECK_VALUE(f.is_contiguous(), "mask_field: expected a contiguous image (strides (", width,
                    ", 1)), got strides ", Tuple{f.strides()});
  check_on_device("mask_field", f, data, data_name);
  TORCH_CHECK_VALUE(field_threshold.has_value(), "field_threshold: expected float32 of shape (", data.size(0),
                    ",), got NoneType");
  check_param_field("field_threshold", *field_threshold, at::kFloat, {data.size(0)}, data, data_name);
  if (!box.device().is_cpu()) return;
  const at::Tensor kind_c = kind.contiguous(), box_c = box.contiguous();
  const uint8_t* k = kind_c.data_ptr<uint8_t>();
  const int64_t* b = box_c.data_ptr<int64_t>();
  for (int64_t i = 0; i < kind_c.numel(); ++i) {
    if (k[i] != kMask) continue;
    const int64_t* bi = b + 4 * i;
    TORCH_CHECK_VALUE(0 <= bi[0] && bi[0] < height && bi[1] == bi[0] + height && 0 <= bi[2] && bi[2] < width &&
                          bi[3] == bi[2] + width,
                      "box[", i, "]: expected the window (dy, dy + ", height, ", dx, dx + ", width,
                      ") of mask_field with 0 <= dy < ", height, " and 0 <= dx < ", width, ", got (", bi[0], ", ",
                      bi[1], ", ", bi[2], ", ", bi[3], ")");
  }
}

// Where the MASK samples' pixels come from: pixel_mask, or mask_field with field_threshold.
inline void check_mask_args(const std::optional<at::Tensor>& pixel_mask, const std::optional<at::Tensor>& mask_field,
                            const std::optional<at::Tensor>& field_threshold, const at::Tensor& data,
                            const at::Tensor& kind, const at::Tensor& box, const char* data_name = "images") {
  if (!mask_field.has_value() && !field_threshold.has_value())
    check_pixel_mask(pixel_mask, data, kind, data_name);
  else
    check_mask_field(mask_field, field_threshold, pixel_mask, data, kind, box, data_name);
}

// -- the checks of each op, in full ---------------------------------------------------------------

// fastmix::mix_: writable images, the params' and the plan's layout, and the params' values on the
// CPU.
inline void check_mix_args(const at::Tensor& images, const at::Tensor& partner, const at::Tensor& lam,
                           const at::Tensor& kind, const at::Tensor& box, const std::optional<at::Tensor>& plan,
                           at::IntArrayRef plan_shape, const std::optional<at::Tensor>& pixel_mask,
                           const std::optional<at::Tensor>& mask_field,
                           const std::optional<at::Tensor>& field_threshold) {
  check_writable_images(images);
  check_params_layout(images, partner, lam, kind, box);
  check_plan_layout(images, plan, plan_shape);
  if (images.device().is_cpu())
    check_params_values(images, partner.contiguous(), lam.contiguous(), kind.contiguous(), box.contiguous());
  check_mask_args(pixel_mask, mask_field, field_threshold, images, kind, box);
}

// fastmix::device_plan: a MixParams on the CPU, its partner and kind values (the boxes are clamped
// into int32, not checked: the op that applies the plan checks them against its images).
inline void check_device_plan_args(const at::Tensor& partner, const at::Tensor& lam, const at::Tensor& kind,
                                   const at::Tensor& box) {
  check_plan_partner(partner);
  const int64_t batch = partner.size(0);
  check_param_field("lam", lam, at::kFloat, {batch}, partner, "partner");
  check_param_field("kind", kind, at::kByte, {batch}, partner, "partner");
  check_param_field("box", box, at::kLong, {batch, 4}, partner, "partner");
  check_targets_params_values(partner, lam, kind);
}

// fastmix::inplace_plan: partner and kind on the CPU, with their values.
inline void check_inplace_plan_args(const at::Tensor& partner, const at::Tensor& kind) {
  check_plan_partner(partner);
  const int64_t batch = partner.size(0);
  check_param_field("kind", kind, at::kByte, {batch}, partner, "partner");
  const at::Tensor partner_c = partner.contiguous(), kind_c = kind.contiguous();
  const int64_t* p = partner_c.data_ptr<int64_t>();
  const uint8_t* k = kind_c.data_ptr<uint8_t>();
  for (int64_t i = 0; i < batch; ++i) {
    check_partner_value(p, i, batch);
    check_kind_value(k, i);
  }
}

// fastmix::mix_into_: the images against out, then out, params and affine (values on the CPU).
// Returns whether out is channels_last.
inline bool check_mix_into_args(const at::Tensor& out, const at::Tensor& images, const at::Tensor& partner,
                                const at::Tensor& lam, const at::Tensor& kind, const at::Tensor& box,
                                const at::Tensor& scale, const at::Tensor& bias, bool hwc,
                                const std::optional<at::Tensor>& pixel_mask,
                                const std::optional<at::Tensor>& mask_field,
                                const std::optional<at::Tensor>& field_threshold) {
  check_mix_into_images(out, images, hwc);
  const bool channels_last = check_out_params_and_affine(out, partner, lam, kind, box, scale, bias,
                                                         images.scalar_type() == at::kByte);
  if (out.device().is_cpu())
    check_params_values(out, partner.contiguous(), lam.contiguous(), kind.contiguous(), box.contiguous());
  check_mask_args(pixel_mask, mask_field, field_threshold, out, kind, box, "out");
  return channels_last;
}

// fastmix::collate_mix_: the samples against out, then out, params and affine (values on the
// CPU). Returns whether out is channels_last.
inline bool check_collate_mix_args(const at::Tensor& out, at::TensorList samples, const at::Tensor& partner,
                                   const at::Tensor& lam, const at::Tensor& kind, const at::Tensor& box,
                                   const at::Tensor& scale, const at::Tensor& bias, bool hwc,
                                   const std::optional<at::Tensor>& pixel_mask,
                                   const std::optional<at::Tensor>& mask_field,
                                   const std::optional<at::Tensor>& field_threshold) {
  check_collate_samples(out, samples, hwc);
  const bool uint8_input = samples.empty() || samples[0].scalar_type() == at::kByte;
  const bool channels_last = check_out_params_and_affine(out, partner, lam, kind, box, scale, bias, uint8_input);
  if (out.device().is_cpu())
    check_params_values(out, partner.contiguous(), lam.contiguous(), kind.contiguous(), box.contiguous());
  check_mask_args(pixel_mask, mask_field, field_threshold, out, kind, box, "out");
  return channels_last;
}

// fastmix::mix_targets: the knobs, the labels, the params' layout; on the CPU the params' values
// and the class indices.
inline void check_mix_targets_args(const at::Tensor& labels, const at::Tensor& partner, const at::Tensor& lam,
                                   const at::Tensor& kind, int64_t num_classes, double smoothing) {
  check_num_classes_and_smoothing(num_classes, smoothing);
  check_labels_layout(labels, num_classes);
  const int64_t batch = labels.size(0);
  check_param_field("partner", partner, at::kLong, {batch}, labels, "labels");
  check_param_field("lam", lam, at::kFloat, {batch}, labels, "labels");
  check_param_field("kind", kind, at::kByte, {batch}, labels, "labels");
  if (labels.device().is_cpu()) {
    check_targets_params_values(partner, lam, kind);
    if (labels.dim() == 1) check_class_indices(labels, num_classes);
  }
}

}  // namespace fastmix
