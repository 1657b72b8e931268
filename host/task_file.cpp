#include "host/task_file.h"

#include <nlohmann/json.hpp>

#include "host/atomic_file.h"
#include "host/checkpoint.h"

namespace qmc::host {
namespace {

using nlohmann::json;

TaskItem ParseItem(std::string_view line, const std::string& where) {
  auto fail = [&where](const std::string& problem) { throw InputError(where + ": " + problem); };
  json object;
  try {
    object = json::parse(line);
  } catch (const json::parse_error& e) {
    fail("not JSON (byte " + std::to_string(e.byte) + ")");
  }
  if (!object.is_object()) fail("not a JSON object");

  TaskItem item;
  item.where = where;
  if (const auto id = object.find("id"); id != object.end()) {
    if (id->is_string()) {
      item.id = id->get<std::string>();
    } else if (id->is_number_integer()) {
      item.id = id->dump();
    } else {
      fail("\"id\" is not a string or an integer");
    }
  }
  const auto context = object.find("context");
  if (context == object.end()) fail("\"context\" is missing");
  if (!context->is_string()) fail("\"context\" is not a string");
  item.context = context->get<std::string>();

  const auto choices = object.find("choices");
  if (choices == object.end()) fail("\"choices\" is missing");
  if (!choices->is_array()) fail("\"choices\" is not an array");
  for (size_t i = 0; i < choices->size(); ++i) {
    const json& choice = (*choices)[i];
    if (!choice.is_string()) fail("choice " + std::to_string(i) + " is not a string");
    if (choice.get_ref<const std::string&>().empty()) fail("choice " + std::to_string(i) + " is empty");
    item.choices.push_back(choice.get<std::string>());
  }
  if (item.choices.size() < 2) fail("\"choices\" has " + std::to_string(item.choices.size()) + ", expected at least 2");

  const auto gold = object.find("gold");
  if (gold == object.end()) fail("\"gold\" is missing");
  if (!gold->is_number_integer()) fail("\"gold\" is not an integer");
  if (gold->get<int64_t>() < 0 || gold->get<int64_t>() >= static_cast<int64_t>(item.choices.size())) {
    fail("\"gold\" " + gold->dump() + " is out of range for " + std::to_string(item.choices.size()) + " choices");
  }
  item.gold = static_cast<uint32_t>(gold->get<int64_t>());
  return item;
}

}  // namespace

std::vector<TaskItem> ParseTaskItems(std::string_view text, const std::string& name) {
  std::vector<TaskItem> items;
  size_t line_number = 0;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    items.push_back(ParseItem(line, name + ":" + std::to_string(line_number)));
  }
  if (items.empty()) throw InputError(name + ": no items");
  return items;
}

std::vector<TaskItem> ReadTaskFile(const std::filesystem::path& path) {
  const std::vector<uint8_t> bytes = ReadWholeFile(path);
  return ParseTaskItems(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), path.string());
}

std::string FormatTaskItems(const std::vector<TaskItem>& items) {
  std::string out;
  for (const TaskItem& item : items) {
    nlohmann::ordered_json line;
    if (!item.id.empty()) line["id"] = item.id;
    line["context"] = item.context;
    line["choices"] = item.choices;
    line["gold"] = item.gold;
    out += line.dump() + "\n";
  }
  return out;
}

}  // namespace qmc::host
