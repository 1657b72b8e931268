// Converters from public multiple-choice benchmark files to task items
// (host/task_file.h), with lm-evaluation-harness's prompts, for
// `qmc convert-task`. docs/task-format.md lists the source formats and prompts.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "host/task_file.h"

namespace qmc::host {

enum class TaskSource { kHellaSwag, kArc, kBoolQ };

// The items of a source file's text (JSON lines; blank lines skipped);
// `name` is the file named in messages. Throws InputError "NAME:LINE: ..."
// for a line that is not JSON or lacks a field the prompt needs, and
// "NAME: no items" for a file without any.
std::vector<TaskItem> ConvertTask(TaskSource source, std::string_view text, const std::string& name);

// lm-eval's HellaSwag preprocess(): strip, " [title]" -> ". ", drop
// "[...]" tags, "  " -> " " (one pass, as Python's str.replace).
std::string HellaSwagPreprocess(std::string_view text);

}  // namespace qmc::host
