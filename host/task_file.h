// Multiple-choice task files (docs/task-format.md): one JSON object per line,
// {"context": string, "choices": [string, ...], "gold": int, "id": optional},
// as `qmc eval --task` reads them and `qmc convert-task` writes them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace qmc::host {

struct TaskItem {
  std::string id;  // "" when the line has none
  std::string context;
  std::vector<std::string> choices;  // at least 2, none empty
  uint32_t gold = 0;                 // index into choices
  std::string where;                 // "FILE:LINE", for messages about the item
};

// The items of a task file's text; `name` is the file named in messages.
// Blank lines are skipped and keys other than the four are ignored. Throws
// InputError "NAME:LINE: ..." for a line that is not a JSON object, a
// missing or ill-typed field, fewer than 2 choices, an empty choice or a gold
// index out of range, and "NAME: no items" for a file without any.
std::vector<TaskItem> ParseTaskItems(std::string_view text, const std::string& name);
// The same for a file (IoError when it cannot be read).
std::vector<TaskItem> ReadTaskFile(const std::filesystem::path& path);

// The file's text for `items`: one line each, keys in the order id (when
// not empty), context, choices, gold.
std::string FormatTaskItems(const std::vector<TaskItem>& items);

}  // namespace qmc::host
