"""LUMI's prompts: a short label per text, the multi-label choice among neighbours' labels, a cluster's name.

``{context}`` is empty or a block of neighbouring texts ending in a blank line
(:func:`llmclust.llm.prompts.context_block`).

Example::

    LUMI_PROMPTS.render("lumi_label", "intent: banking customer purpose", text="my card has not arrived")
"""

from llmclust.llm.prompts import PromptSet

LUMI_PROMPTS = PromptSet({
    "intent": {
        "lumi_label": "{context}Customer message: {text}\nIn 2 to 4 words, what does the customer want?",
        "lumi_multilabel": ("Customer message: {text}\nPossible intents:\n{labels}\n"
                            "Which intents fit the message? Reply with their numbers only."),
        "cluster_name": "Intents of customer messages in one group:\n{labels}\nIn 2 to 4 words, name the group.",
    },
    "generic": {
        "lumi_label": "{context}Text: {text}\nIn 2 to 4 words, what is the {task} of this text ({standard})?",
        "lumi_multilabel": ("Text: {text}\nPossible {task} labels ({standard}):\n{labels}\n"
                            "Which labels fit the text? Reply with their numbers only."),
        "cluster_name": "{task} labels of texts in one group:\n{labels}\nIn 2 to 4 words, name the group.",
    },
})
