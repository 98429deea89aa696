// Chat templates and chat output parsing through llama.cpp's common chat layer, as
// llama-server uses it (docs/chat-templates.md):
//  - ChatTemplates renders a conversation (messages, tools, tool results, assistant
//    tool calls, reasoning) into the prompt with the model's own Jinja template (or an
//    override), and says how to constrain and parse the output: a grammar (lazy, with
//    its triggers, for tool calls), preserved tokens, extra stop strings and a parser.
//  - ChatOutputParser turns the generated text into content, reasoning and tool
//    calls, incrementally: each push returns the deltas since the previous one.
// Neither keeps a pointer to the model after construction; errors are exceptions
// (std::invalid_argument: the request; std::runtime_error: the template).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "llama.h"
#include "sequence.h"

struct common_chat_templates;
struct common_chat_msg;
struct common_chat_templates_inputs;

namespace inference {

/** One chat request, in OpenAI's JSON spelling (as llama-server takes it). */
struct ChatInput {
    std::string messagesJson;         // the `messages` array
    std::string toolsJson;            // the `tools` array; empty: none
    std::string toolChoice = "auto";  // auto | none | required
    bool parallelToolCalls = true;
    std::string jsonSchema;           // response_format's schema as JSON; empty: none
    std::string templateKwargsJson;   // `chat_template_kwargs`: a JSON object of extra template inputs; empty: none
    std::string reasoningEffort;      // `reasoning_effort`; empty: absent ("none" turns thinking off)
};

/** The rendered prompt and how its output is constrained and parsed. */
struct ChatPrompt {
    std::string prompt;
    std::string format;            // common_chat_format name
    std::string generationPrompt;  // the assistant prefix the template ends with
    std::string parser;            // serialized PEG parser of the output; empty: content only
    std::string grammar;           // GBNF; empty: unconstrained
    bool grammarLazy = false;
    std::vector<GrammarTrigger> grammarTriggers;
    std::vector<std::string> preservedTokens;
    std::vector<std::string> additionalStops;
    bool continuation = false;     // the conversation ended with an assistant message that is continued
};

struct ChatTemplatesDeleter {
    void operator()(common_chat_templates * t) const;
};

class ChatTemplates {
  public:
    /**
     * `source`: empty for the model's own template, else a Jinja template source, or
     * (useJinja false) the name of one of llama.cpp's built-in templates.
     */
    ChatTemplates(const llama_model * model, const std::string & source, bool useJinja);

    ChatPrompt apply(const ChatInput & input) const;
    /** The template source in use. */
    std::string source() const;
    /** Whether tool definitions can be rendered (a Jinja template). */
    bool supportsTools() const { return useJinja_; }
    /** Whether the template itself describes tools (else llama.cpp adds a generic description). */
    bool nativeTools() const;

  private:
    common_chat_templates_inputs inputs(const ChatInput & input) const;
    ChatPrompt render(const common_chat_templates_inputs & in) const;

    std::unique_ptr<common_chat_templates, ChatTemplatesDeleter> t_;
    bool useJinja_;
};

struct ChatToolCall {
    std::string id;
    std::string name;
    std::string arguments;
};

/** One change of the parsed message (llama.cpp's common_chat_msg_diff). */
struct ChatDelta {
    std::string content;
    std::string reasoning;
    int32_t toolIndex = -1;  // >= 0: a tool call delta (id and name only on its first)
    ChatToolCall tool;
};

struct ChatMessageOut {
    std::string content;
    std::string reasoning;
    std::vector<ChatToolCall> toolCalls;
};

class ChatOutputParser {
  public:
    /** Throws std::invalid_argument for an unknown format or a parser that does not load. */
    ChatOutputParser(const std::string & format, const std::string & generationPrompt, const std::string & parser,
                     bool parseToolCalls, bool continuation);
    ~ChatOutputParser();
    ChatOutputParser(const ChatOutputParser &) = delete;
    ChatOutputParser & operator=(const ChatOutputParser &) = delete;

    /**
     * Appends generated text and re-parses everything so far. While `partial`, output
     * that does not parse yet yields no delta; at the end (not partial) output that does
     * not match the template's format is taken as plain content.
     */
    std::vector<ChatDelta> push(const std::string & text, bool partial);
    ChatMessageOut message() const;

  private:
    struct State;
    std::unique_ptr<State> s_;
};

}  // namespace inference
