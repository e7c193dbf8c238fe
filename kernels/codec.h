// 2-bit genotype codec kernels (CPU, OpenMP). Layouts are those of src/genofast/ops/codec.py:
//
//   packed, individual-major  uint8 [N, ceil(M/4)]  SNP j of a row in byte j/4, bits 2*(j%4);
//                                                    code = copies of allele_1 (0/1/2), 3 = missing
//   genotypes                 int8  [N, M]          0/1/2, -1 = missing
//   .bed body, SNP-major      uint8 [M, ceil(N/4)]  individual i of a row in byte i/4, bits
//                                                    2*(i%4); PLINK codes 00 hom A1, 01 missing,
//                                                    10 het, 11 hom A2
//
// Pad bits of every output are 0. All arrays are C-contiguous; the caller (codec_bind.cpp) checks
// shapes. The functions are plain C++ (no Python), safe to call with the GIL released, and throw
// std::out_of_range for an index outside its array.
#pragma once

#include <cstdint>

namespace genofast::codec {

/// packed [n_rows, ceil(n_snps/4)] -> out int8 [n_rows, n_snps]; code 3 becomes -1.
void unpack(const uint8_t* packed, int64_t n_rows, int64_t n_snps, int8_t* out);

/// genotypes int8 [n_rows, n_snps] -> out [n_rows, ceil(n_snps/4)]. Returns how many values lie
/// outside {-1, 0, 1, 2}; those are still written, as their low two bits (as the torch reference
/// does).
int64_t pack(const int8_t* genotypes, int64_t n_rows, int64_t n_snps, uint8_t* out);

/// The read transpose: .bed body [bed_rows, bed_row_bytes] -> out [n_out, ceil(n_snps/4)].
/// snp_index (n_snps entries, any order, duplicates allowed) picks the .bed rows; nullptr means
/// rows 0..n_snps-1. sample_index (n_out entries) picks the individuals; nullptr means individuals
/// 0..n_out-1. PLINK codes are mapped to allele_1 counts (00->2, 01->3, 10->1, 11->0).
void bed_to_packed(const uint8_t* bed, int64_t bed_rows, int64_t bed_row_bytes,
                   const int64_t* snp_index, int64_t n_snps, const int64_t* sample_index,
                   int64_t n_out, uint8_t* out);

/// The write transpose: packed [n_rows, ceil(n_snps/4)] -> .bed body out [n_snps, ceil(n_rows/4)],
/// counts mapped to PLINK codes (0->11, 1->10, 2->00, 3->01).
void packed_to_bed(const uint8_t* packed, int64_t n_rows, int64_t n_snps, uint8_t* out);

/// genotypes int8 [n_rows, n_snps] -> .bed body out [n_snps, ceil(n_rows/4)] in one pass. Returns
/// the count of values outside {-1, 0, 1, 2} (written as their low two bits, then mapped).
int64_t pack_bed(const int8_t* genotypes, int64_t n_rows, int64_t n_snps, uint8_t* out);

}  // namespace genofast::codec
