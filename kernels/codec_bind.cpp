// Python bindings of the codec kernels (codec.h). The calling convention is fixed by
// src/genofast/ops/codec.py: numpy arrays in, preallocated output arrays, no allocation here.
//
// nanobind checks dtype, dimension count, C-contiguity and device, and noconvert() stops it from
// silently copying or casting (a converted `out` would be written and thrown away); a mismatch
// raises TypeError with the expected signature. Shapes are checked here (ValueError), indices in
// the kernel (IndexError). The kernels run with the GIL released and use OpenMP inside.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstdint>
#include <string>

#include "codec.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

template <typename T>
using In2 = nb::ndarray<const T, nb::ndim<2>, nb::c_contig, nb::device::cpu>;
template <typename T>
using Out2 = nb::ndarray<T, nb::ndim<2>, nb::c_contig, nb::device::cpu>;
using Index = nb::ndarray<const int64_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

int64_t packed_bytes(int64_t n) { return (n + 3) / 4; }

template <class A>
std::string shape_str(const A& a) {
  return "(" + std::to_string(a.shape(0)) + ", " + std::to_string(a.shape(1)) + ")";
}

[[noreturn]] void shape_error(const std::string& message) {
  throw nb::value_error(message.c_str());
}

void unpack(In2<uint8_t> packed, Out2<int8_t> out) {
  const int64_t n = int64_t(out.shape(0)), m = int64_t(out.shape(1));
  if (int64_t(packed.shape(0)) != n || int64_t(packed.shape(1)) != packed_bytes(m))
    shape_error("unpack: out has shape " + shape_str(out) + ", so packed must have shape (" +
                std::to_string(n) + ", " + std::to_string(packed_bytes(m)) + "); got " +
                shape_str(packed));
  nb::gil_scoped_release release;
  genofast::codec::unpack(packed.data(), n, m, out.data());
}

int64_t pack(In2<int8_t> genotypes, Out2<uint8_t> out) {
  const int64_t n = int64_t(genotypes.shape(0)), m = int64_t(genotypes.shape(1));
  if (int64_t(out.shape(0)) != n || int64_t(out.shape(1)) != packed_bytes(m))
    shape_error("pack: genotypes have shape " + shape_str(genotypes) +
                ", so out must have shape (" + std::to_string(n) + ", " +
                std::to_string(packed_bytes(m)) + "); got " + shape_str(out));
  nb::gil_scoped_release release;
  return genofast::codec::pack(genotypes.data(), n, m, out.data());
}

void bed_to_packed(In2<uint8_t> bed, Index snp_index, Index sample_index, Out2<uint8_t> out) {
  const int64_t bed_rows = int64_t(bed.shape(0)), row_bytes = int64_t(bed.shape(1));
  const bool all_snps = snp_index.shape(0) == 0, all_samples = sample_index.shape(0) == 0;
  const int64_t m = all_snps ? bed_rows : int64_t(snp_index.shape(0));
  const int64_t n = int64_t(out.shape(0));
  if (int64_t(out.shape(1)) != packed_bytes(m))
    shape_error("bed_to_packed: " + std::to_string(m) + " SNPs need " +
                std::to_string(packed_bytes(m)) + " bytes per output row; out has shape " +
                shape_str(out));
  if (all_samples && n > 4 * row_bytes)
    shape_error("bed_to_packed: out has " + std::to_string(n) + " rows but the .bed rows of " +
                std::to_string(row_bytes) + " bytes hold at most " + std::to_string(4 * row_bytes) +
                " individuals");
  if (!all_samples && int64_t(sample_index.shape(0)) != n)
    shape_error("bed_to_packed: sample_index has " + std::to_string(sample_index.shape(0)) +
                " entries but out has " + std::to_string(n) + " rows");
  nb::gil_scoped_release release;
  genofast::codec::bed_to_packed(bed.data(), bed_rows, row_bytes,
                                 all_snps ? nullptr : snp_index.data(), m,
                                 all_samples ? nullptr : sample_index.data(), n, out.data());
}

void packed_to_bed(In2<uint8_t> packed, Out2<uint8_t> out) {
  const int64_t b = int64_t(packed.shape(0)), m = int64_t(out.shape(0));
  if (int64_t(packed.shape(1)) != packed_bytes(m) || int64_t(out.shape(1)) != packed_bytes(b))
    shape_error("packed_to_bed: packed of shape (B, ceil(M/4)) needs out of shape (M, ceil(B/4)); "
                "got packed " + shape_str(packed) + " and out " + shape_str(out));
  nb::gil_scoped_release release;
  genofast::codec::packed_to_bed(packed.data(), b, m, out.data());
}

int64_t pack_bed(In2<int8_t> genotypes, Out2<uint8_t> out) {
  const int64_t b = int64_t(genotypes.shape(0)), m = int64_t(genotypes.shape(1));
  if (int64_t(out.shape(0)) != m || int64_t(out.shape(1)) != packed_bytes(b))
    shape_error("pack_bed: genotypes have shape " + shape_str(genotypes) +
                ", so out must have shape (" + std::to_string(m) + ", " +
                std::to_string(packed_bytes(b)) + "); got " + shape_str(out));
  nb::gil_scoped_release release;
  return genofast::codec::pack_bed(genotypes.data(), b, m, out.data());
}

}  // namespace

void bind_codec(nb::module_& m) {
  m.def("unpack", &unpack, "packed"_a.noconvert(), "out"_a.noconvert(),
        "Packed individual-major uint8 [N, ceil(M/4)] -> out int8 [N, M] (code 3 -> -1).");
  m.def("pack", &pack, "genotypes"_a.noconvert(), "out"_a.noconvert(),
        "int8 [N, M] -> out uint8 [N, ceil(M/4)], pad bits 0. Returns the number of values "
        "outside {-1, 0, 1, 2} (written as their low two bits).");
  m.def("bed_to_packed", &bed_to_packed, "bed"_a.noconvert(), "snp_index"_a.noconvert(),
        "sample_index"_a.noconvert(), "out"_a.noconvert(),
        ".bed body uint8 [M_file, ceil(N_file/4)] (may be a read-only memmap) -> packed "
        "individual-major out uint8 [N, ceil(M/4)]. snp_index (int64, any order, duplicates "
        "allowed) picks .bed rows, empty = all rows in order; sample_index picks individuals, "
        "empty = individuals 0..N-1 with N = out.shape[0].");
  m.def("packed_to_bed", &packed_to_bed, "packed"_a.noconvert(), "out"_a.noconvert(),
        "Packed individual-major uint8 [B, ceil(M/4)] -> .bed body out uint8 [M, ceil(B/4)].");
  m.def("pack_bed", &pack_bed, "genotypes"_a.noconvert(), "out"_a.noconvert(),
        "int8 [B, M] -> .bed body out uint8 [M, ceil(B/4)]. Returns the number of values "
        "outside {-1, 0, 1, 2}.");
}
