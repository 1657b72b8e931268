#include "host/task_convert.h"

#include <cctype>
#include <nlohmann/json.hpp>

#include "host/checkpoint.h"

namespace qmc::host {
namespace {

using nlohmann::json;

constexpr std::string_view kWhitespace = " \t\n\r\v\f";

// One source line's object, its fields read with messages naming the line.
class Line {
 public:
  Line(std::string_view text, std::string where) : where_(std::move(where)) {
    try {
      object_ = json::parse(text);
    } catch (const json::parse_error& e) {
      Fail("not JSON (byte " + std::to_string(e.byte) + ")");
    }
    if (!object_.is_object()) Fail("not a JSON object");
  }

  const std::string& where() const { return where_; }
  [[noreturn]] void Fail(const std::string& problem) const { throw InputError(where_ + ": " + problem); }

  const json& Field(const json& object, const std::string& key, const std::string& path) const {
    const auto it = object.find(key);
    if (it == object.end()) Fail("\"" + path + "\" is missing");
    return *it;
  }
  std::string String(const json& object, const std::string& key, const std::string& path) const {
    const json& v = Field(object, key, path);
    if (!v.is_string()) Fail("\"" + path + "\" is not a string");
    return v.get<std::string>();
  }
  std::string String(const std::string& key) const { return String(object_, key, key); }
  const json& object() const { return object_; }

  // The source's own id, if it has one under `key` (a string or an integer).
  std::string Id(const std::string& key) const {
    const auto it = object_.find(key);
    if (it == object_.end()) return "";
    return it->is_string() ? it->get<std::string>() : it->dump();
  }

 private:
  std::string where_;
  json object_;
};

std::string_view Strip(std::string_view s) {
  const size_t first = s.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(kWhitespace) - first + 1);
}

// Python's str.replace: every non-overlapping occurrence, left to right, in one pass.
std::string Replace(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  for (size_t at = 0;;) {
    const size_t hit = s.find(from, at);
    if (hit == std::string_view::npos) return out.append(s.substr(at));
    out.append(s.substr(at, hit - at)).append(to);
    at = hit + from.size();
  }
}

// Python's str.capitalize for ASCII: the first letter upper case, the rest lower.
std::string Capitalize(std::string_view s) {
  std::string out(s);
  for (size_t i = 0; i < out.size(); ++i) {
    const char c = out[i];
    if (i == 0 && c >= 'a' && c <= 'z') out[i] = static_cast<char>(c - 'a' + 'A');
    if (i > 0 && c >= 'A' && c <= 'Z') out[i] = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

TaskItem HellaSwag(const Line& line) {
  TaskItem item;
  item.id = line.Id("ind");
  item.context = HellaSwagPreprocess(line.String("activity_label") + ": " + line.String("ctx_a") + " " +
                                     Capitalize(line.String("ctx_b")));
  const json& endings = line.Field(line.object(), "endings", "endings");
  if (!endings.is_array() || endings.size() < 2) line.Fail("\"endings\" is not an array of at least 2");
  for (size_t i = 0; i < endings.size(); ++i) {
    if (!endings[i].is_string()) line.Fail("\"endings[" + std::to_string(i) + "]\" is not a string");
    item.choices.push_back(std::string(" ").append(HellaSwagPreprocess(endings[i].get<std::string>())));
  }
  // rowanz's file has an integer label, the HuggingFace copy a string.
  const json& label = line.Field(line.object(), "label", "label");
  int64_t gold = -1;
  if (label.is_number_integer()) {
    gold = label.get<int64_t>();
  } else if (label.is_string() && label.get_ref<const std::string&>().size() == 1 &&
             std::isdigit(static_cast<unsigned char>(label.get_ref<const std::string&>()[0]))) {
    gold = label.get_ref<const std::string&>()[0] - '0';
  }
  if (gold < 0 || gold >= static_cast<int64_t>(item.choices.size())) line.Fail("\"label\" " + label.dump() + " is not an ending's index");
  item.gold = static_cast<uint32_t>(gold);
  return item;
}

TaskItem Arc(const Line& line) {
  TaskItem item;
  item.id = line.Id("id");
  const json& question = line.Field(line.object(), "question", "question");
  if (!question.is_object()) line.Fail("\"question\" is not an object");
  item.context = "Question: " + line.String(question, "stem", "question.stem") + "\nAnswer:";
  const json& choices = line.Field(question, "choices", "question.choices");
  if (!choices.is_array() || choices.size() < 2) line.Fail("\"question.choices\" is not an array of at least 2");
  const std::string answer = line.String("answerKey");
  bool found = false;
  for (size_t i = 0; i < choices.size(); ++i) {
    const std::string path = "question.choices[" + std::to_string(i) + "]";
    if (!choices[i].is_object()) line.Fail("\"" + path + "\" is not an object");
    item.choices.push_back(std::string(" ").append(line.String(choices[i], "text", path + ".text")));
    if (line.String(choices[i], "label", path + ".label") == answer && !found) {
      item.gold = static_cast<uint32_t>(i);
      found = true;
    }
  }
  if (!found) line.Fail("\"answerKey\" \"" + answer + "\" is not among the choices' labels");
  return item;
}

TaskItem BoolQ(const Line& line) {
  TaskItem item;
  item.id = line.Id("idx");
  item.context = line.String("passage") + "\nQuestion: " + line.String("question") + "?\nAnswer:";
  item.choices = {" no", " yes"};
  // The original dev.jsonl has "answer": true/false, SuperGLUE's copy "label": 0/1.
  const auto answer = line.object().find("answer");
  const auto label = line.object().find("label");
  if (answer != line.object().end()) {
    if (!answer->is_boolean()) line.Fail("\"answer\" is not true or false");
    item.gold = answer->get<bool>() ? 1 : 0;
  } else if (label != line.object().end()) {
    if (!label->is_number_integer() || (label->get<int64_t>() != 0 && label->get<int64_t>() != 1)) {
      line.Fail("\"label\" is not 0 or 1");
    }
    item.gold = static_cast<uint32_t>(label->get<int64_t>());
  } else {
    line.Fail("\"answer\" is missing");
  }
  return item;
}

}  // namespace

std::string HellaSwagPreprocess(std::string_view text) {
  std::string s = Replace(Strip(text), " [title]", ". ");
  // re.sub("\\[.*?\\]", "", s): a '[' up to the nearest ']' on the same line.
  std::string untagged;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '[') {
      const size_t close = s.find_first_of("]\n", i + 1);
      if (close != std::string::npos && s[close] == ']') {
        i = close;
        continue;
      }
    }
    untagged += s[i];
  }
  return Replace(untagged, "  ", " ");
}

std::vector<TaskItem> ConvertTask(TaskSource source, std::string_view text, const std::string& name) {
  std::vector<TaskItem> items;
  size_t line_number = 0;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const Line parsed(line, name + ":" + std::to_string(line_number));
    TaskItem item = source == TaskSource::kHellaSwag ? HellaSwag(parsed)
                    : source == TaskSource::kArc     ? Arc(parsed)
                                                     : BoolQ(parsed);
    item.where = parsed.where();
    items.push_back(std::move(item));
  }
  if (items.empty()) throw InputError(name + ": no items");
  return items;
}

}  // namespace qmc::host
