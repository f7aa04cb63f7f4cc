"""What the API reads and writes, as pydantic models: FastAPI validates requests with them (422 naming the field
that is wrong) and describes them in /openapi.json."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictStr, model_validator


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("the text is empty")
    return text


Text = Annotated[StrictStr, AfterValidator(_not_blank)]


class PredictRequest(BaseModel):
    """One text (`text`) or several (`texts`); `model` picks one of the served models by name."""

    model_config = ConfigDict(extra="forbid")
    text: Text | None = Field(None, description="one text to classify")
    texts: list[Text] | None = Field(None, min_length=1, description="several texts, answered in order")
    model: StrictStr | None = Field(None, description="a served model's name (default: the server's first)")
    explain: StrictBool = Field(False, description="add per-token attributions (as ?explain=true does)")
    method: Literal["integrated-gradients", "occlusion"] = "integrated-gradients"

    @model_validator(mode="after")
    def one_of_text_or_texts(self):
        if (self.text is None) == (self.texts is None):
            raise ValueError("give either 'text' (one string) or 'texts' (a list of strings)")
        return self

    @property
    def all_texts(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts)


class TokenAttribution(BaseModel):
    token: str = Field(description="the tokenizer's token ([UNK] for a word outside the vocabulary)")
    start: int = Field(description="where the token starts in the text (characters)")
    end: int
    score: float | None = Field(description="logits towards the label; null when the model never read it "
                                            "(beyond max_len)")


class Attributions(BaseModel):
    method: str
    tokens: list[TokenAttribution]
    completeness_gap: float | None = Field(None, description="integrated gradients: the scores' sum minus the "
                                                             "logit difference from the baseline")


class Prediction(BaseModel):
    label: str
    probabilities: dict[str, float]
    attributions: Attributions | None = None


class PredictResponse(BaseModel):
    model: str
    predictions: list[Prediction]
