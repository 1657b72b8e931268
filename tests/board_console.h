// What the tests and benches that drive a board (qmc-fw-emu, or the M55
// under QEMU) share: the emulated board's command line and port, and the
// answers in its console transcript.
#pragma once

#include <filesystem>
#include <map>
#include <regex>
#include <string>
#include <vector>

namespace qmc::testing {

// One prompt's answer: the text generated, and the name=value pairs of the
// stats line after it (firmware/generator.h).
struct BoardAnswer {
  std::string text;
  std::map<std::string, double> stats;
};

// The answers in a console transcript, in order: each text runs from the
// line after the ready banner (firmware/firmware.cpp), or after the
// previous stats line, to the next stats line. None without a banner.
inline std::vector<BoardAnswer> BoardAnswers(const std::string& console) {
  std::vector<BoardAnswer> answers;
  const size_t ready = console.find("qmc-fw: ready:");
  if (ready == std::string::npos) return answers;
  const std::string marker = "\nqmc-fw: stats ";
  const std::regex pair(R"(([\w/]+)=([0-9.]+))");
  size_t pos = console.find('\n', ready);
  for (size_t stats; pos != std::string::npos && (stats = console.find(marker, pos)) != std::string::npos;) {
    BoardAnswer answer{console.substr(pos + 1, stats - pos - 1), {}};
    const size_t end = std::min(console.find('\n', stats + 1), console.size());
    const std::string line = console.substr(stats + marker.size(), end - stats - marker.size());
    for (std::sregex_iterator it(line.begin(), line.end(), pair), done; it != done; ++it) {
      answer.stats[(*it)[1]] = std::stod((*it)[2]);
    }
    answers.push_back(std::move(answer));
    pos = end < console.size() ? end : std::string::npos;
  }
  return answers;
}

// The first answer's text, ended by a newline as `qmc run` prints it; empty
// when the board generated nothing to its stats line.
inline std::string GeneratedText(const std::string& console) {
  const std::vector<BoardAnswer> answers = BoardAnswers(console);
  return answers.empty() ? std::string() : answers[0].text + "\n";
}

#ifdef QMC_FW_EMU
// The command line of the emulated board whose window files are in `nvm`
// (`options`: more qmc-fw-emu flags), and its flash port (unquoted).
inline std::string EmuCommand(const std::filesystem::path& nvm, const std::string& options = "") {
  return QMC_FW_EMU " --nvm " + nvm.string() + (options.empty() ? "" : " " + options);
}
inline std::string EmuPort(const std::filesystem::path& nvm, const std::string& options = "") {
  return "exec:" + EmuCommand(nvm, options);
}
#endif

}  // namespace qmc::testing
