"""The combiners that are learned models of their own (see `genrekit.combiners`): stacking, a logistic
regression over the members' log-probabilities (scikit-learn), and gating, a small network that weights the
members per clip (torch). Same habits as the others: `fit`, `predict_proba`, `get_state`, `set_state`."""

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold

from .constants import EPS


class Stacking:
    """Multinomial logistic regression on the concatenated member log-probabilities."""

    def __init__(self, seed=0):
        self.seed = seed

    @staticmethod
    def _design(probs):
        return np.log(probs + EPS).transpose(1, 0, 2).reshape(probs.shape[1], -1)

    def fit(self, probs, y, stats=None):
        y = np.asarray(y)
        if y.ndim == 2:  # label sets: a logistic regression learns from the clips with one right answer
            single = y.sum(1) == 1
            probs, y = probs[:, single], y[single].argmax(1)
        folds = min(5, int(np.bincount(y)[np.bincount(y) > 0].min()))
        if folds >= 2:
            model = LogisticRegressionCV(Cs=np.logspace(-3, 2, 11), l1_ratios=(0.0,), use_legacy_attributes=False,
                                         cv=StratifiedKFold(folds, shuffle=True, random_state=self.seed),
                                         scoring="neg_log_loss", max_iter=2000)
        else:  # too few clips per class to cross-validate: a fixed, moderate regularisation
            model = LogisticRegression(C=1.0, max_iter=2000)
        self.model_ = model.fit(self._design(probs), y)
        self.n_classes_ = probs.shape[2]
        return self

    def predict_proba(self, probs, stats=None):
        out = np.zeros((probs.shape[1], self.n_classes_))
        out[:, self.model_.classes_] = self.model_.predict_proba(self._design(probs))
        return out

    def get_state(self):
        m = self.model_
        return {"coef": m.coef_.tolist(), "intercept": m.intercept_.tolist(), "classes": m.classes_.tolist(),
                "n_classes": self.n_classes_}

    def set_state(self, state):
        model = LogisticRegression()
        model.coef_, model.intercept_ = np.asarray(state["coef"]), np.asarray(state["intercept"])
        model.classes_ = np.asarray(state["classes"])
        self.model_, self.n_classes_ = model, state["n_classes"]
        return self


class Gate(torch.nn.Module):
    """Per-clip member weights from standardised input statistics: a one-hidden-layer MLP and a softmax."""

    def __init__(self, n_stats, n_members, hidden=16, dropout=0.2):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(n_stats, hidden), torch.nn.ReLU(), torch.nn.Dropout(dropout),
                                       torch.nn.Linear(hidden, n_members))

    def forward(self, stats):
        return torch.softmax(self.net(stats), dim=1)


class GatedEnsemble:
    """Mixture of experts: member probabilities mixed with per-clip weights from a gate (members frozen)."""

    def __init__(self, hidden=16, epochs=300, lr=1e-2, weight_decay=1e-2, seed=0):
        self.hidden, self.epochs, self.lr, self.weight_decay, self.seed = hidden, epochs, lr, weight_decay, seed

    def _mix(self, probs, stats):
        gates = self.gate_(torch.as_tensor((stats - self.mean_) / self.std_, dtype=torch.float32))
        return gates, torch.einsum("nm,mnc->nc", gates, torch.as_tensor(probs, dtype=torch.float32))

    def fit(self, probs, y, stats):
        torch.manual_seed(self.seed)
        self.mean_, self.std_ = stats.mean(0), stats.std(0) + 1e-6
        self.gate_ = Gate(stats.shape[1], len(probs), self.hidden)
        optimizer = torch.optim.AdamW(self.gate_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        y = np.asarray(y)
        masks = torch.as_tensor(y if y.ndim == 2 else np.eye(probs.shape[2], dtype=bool)[y], dtype=torch.float32)
        self.gate_.train()
        for _ in range(self.epochs):
            _, mixed = self._mix(probs, stats)
            loss = -torch.log((mixed * masks).sum(1) + EPS).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        self.gate_.eval()
        return self

    def gate_values(self, stats):
        """Per-clip member weights [shape=(n_clips, n_members)], rows summing to one."""
        with torch.no_grad():
            return self.gate_(torch.as_tensor((stats - self.mean_) / self.std_, dtype=torch.float32)).numpy()

    def predict_proba(self, probs, stats):
        with torch.no_grad():
            return self._mix(probs, stats)[1].numpy()

    def get_state(self):
        return {"mean": self.mean_.tolist(), "std": self.std_.tolist(), "hidden": self.hidden,
                "gate": {name: value.tolist() for name, value in self.gate_.state_dict().items()},
                "n_members": self.gate_.net[-1].out_features}

    def set_state(self, state):
        self.mean_, self.std_ = np.asarray(state["mean"]), np.asarray(state["std"])
        self.hidden = state["hidden"]
        self.gate_ = Gate(len(self.mean_), state["n_members"], self.hidden)
        self.gate_.load_state_dict({name: torch.tensor(value) for name, value in state["gate"].items()})
        self.gate_.eval()
        return self
