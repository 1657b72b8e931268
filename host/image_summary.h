// What went where in an image, as JSON (the `qmc inspect --json` schema,
// docs/inspect-json.md) and as the text `qmc inspect` prints.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/image_reader.h"

namespace qmc::host {

// The "schema" every summary carries (docs/inspect-json.md).
inline constexpr int kSummarySchema = 1;

// One line naming a reader failure, e.g. "section 2: section CRC mismatch".
std::string DescribeStatus(const Status& status);

// Summarises an image whose header and section table are valid; section
// CRCs are reported, not required. Tensors are listed when the directory is valid.
nlohmann::json SummarizeImage(const image::ImageView& view);

std::string FormatSummary(const nlohmann::json& summary);

const char* QuantizerName(image::Quantizer quantizer);
const char* SchemeName(image::Scheme scheme);

}  // namespace qmc::host
