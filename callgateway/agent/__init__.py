"""The booking agent: one protocol, an offline rules agent and an OpenAI tool-calling agent."""
