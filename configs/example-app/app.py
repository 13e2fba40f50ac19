"""A FastAPI + LangChain app with no tracing code: `opentelemetry-instrument` (Dockerfile)
instruments FastAPI and LangChain at start-up and sends OTLP to OTEL_EXPORTER_OTLP_ENDPOINT.

    POST /ask {"question": "..."}  -> {"answer": "..."}

With OPENAI_API_KEY set it asks OpenAI; without, a fake chat model answers, so the example
runs (and shows LLM spans in otel2dd's log) with no account anywhere.
"""
import os

from fastapi import FastAPI
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from pydantic import BaseModel


def chat_model():
    if os.environ.get("OPENAI_API_KEY"):
        from langchain_openai import ChatOpenAI
        return ChatOpenAI(model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"), temperature=0)
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    return FakeListChatModel(responses=["Paris is the capital of France."])


prompt = ChatPromptTemplate.from_messages([
    ("system", "Answer in one sentence."),
    ("human", "{question}"),
])
chain = prompt | chat_model() | StrOutputParser()
app = FastAPI(title="otel2dd example app")


class Question(BaseModel):
    question: str


@app.post("/ask")
async def ask(q: Question):
    return {"answer": await chain.ainvoke({"question": q.question})}


@app.get("/healthz")
async def healthz():
    return {"status": "ok"}
