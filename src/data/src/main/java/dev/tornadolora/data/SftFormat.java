package dev.tornadolora.data;

/**
 * The dataset types of TRL's SFT trainer, told apart by the first example's keys as TRL does.
 * <pre>
 *   LANGUAGE_MODELING                 {"text": "..."}
 *   PROMPT_COMPLETION                 {"prompt": "...", "completion": "..."}
 *   CONVERSATIONAL                    {"messages": [{"role": "user", "content": "..."}, ...]}
 *   CONVERSATIONAL_PROMPT_COMPLETION  {"prompt": [messages], "completion": [messages]}
 *   ALPACA                            {"instruction": "...", "input": "...", "output": "..."}  → prompt-completion
 * </pre>
 */
public enum SftFormat {
    LANGUAGE_MODELING("language modeling {\"text\"}"),
    PROMPT_COMPLETION("prompt-completion {\"prompt\", \"completion\"}"),
    CONVERSATIONAL("conversational {\"messages\"}"),
    CONVERSATIONAL_PROMPT_COMPLETION("conversational prompt-completion {\"prompt\": [...], \"completion\": [...]}"),
    ALPACA("alpaca {\"instruction\", \"input\", \"output\"}");

    private final String description;

    SftFormat(String description) {
        this.description = description;
    }

    public boolean conversational() {
        return this == CONVERSATIONAL || this == CONVERSATIONAL_PROMPT_COMPLETION;
    }

    /** Prompt and completion apart, so that {@code completion_only_loss} applies (TRL's default for these). */
    public boolean promptCompletion() {
        return this == PROMPT_COMPLETION || this == CONVERSATIONAL_PROMPT_COMPLETION || this == ALPACA;
    }

    public String description() {
        return description;
    }
}
