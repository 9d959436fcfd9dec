"""The ``run.py`` every PyQMC Writer writes (a ``str.format`` template: ``{method}``; braces doubled)."""

SCRIPT = '''\
"""{method} run written by autogenv2: options are in params.json; rerun to continue."""
import json
import os

import h5py
import numpy as np

P = json.load(open("params.json"))
done, groups = 0, P.get("walker_groups", 0)
if os.path.exists(P["output"]):
    with h5py.File(P["output"], "r") as f:
        done = len(f[P["counter"]]) if P["counter"] in f else 0
        # a file continues with the groups it was begun with (none, or its own number of them)
        groups = f["energygroups"].shape[-1] if "energygroups" in f else 0
np.random.seed(P["seed"] + done)
import pyqmc.api as pyq
from pyqmc.method import linemin
from pyqmc.method.mc import vmc
from pyqmc.recipes import initialize_qmc_objects

kws = dict(P["options"])
wavefunction = P["wavefunction"]
if "S" in kws:  # periodic: record the twist's k-vector and weight for twist averaging
    from pyqmc.pbc.twists import create_supercell_twists
    cell, mf = pyq.recover_pyscf(P["chkfile"])
    twists = create_supercell_twists(pyq.get_supercell(cell, np.asarray(kws["S"])), mf)
    index = kws.get("slater_kws", {{}}).get("twist", 0)
    if not 0 <= index < len(twists["counts"]):
        raise ValueError(f"twist {{index}} does not exist: the cell and k-mesh give "
                         f"{{len(twists['counts'])}} twists")
    with open("twist.json", "w") as f:
        weight = float(twists["counts"][index] / np.sum(twists["counts"]))
        json.dump({{"twist": index, "ntwists": len(twists["counts"]), "weight": weight,
                   "kpoint": twists["twists"][index].tolist()}}, f)
    if wavefunction:  # take only the Jastrow (wf2*): the orbitals (wf1*) belong to the twist it was made at
        with h5py.File(wavefunction, "r") as src, h5py.File("jastrow.hdf5", "w") as dst:
            for key in src["wf"]:
                if not key.startswith("wf1"):
                    dst[f"wf/{{key}}"] = src[f"wf/{{key}}"][()]
        wavefunction = "jastrow.hdf5"
if wavefunction and not (P["method"] == "OPTIMIZE" and os.path.exists(P["output"])):
    kws["load_parameters"] = wavefunction
SETUP = ("nconfig", "load_parameters", "S", "jastrow_kws", "slater_kws")


class Delegating:
    """A wrapper of PyQMC's energy accumulator: what it does not define, the accumulator answers."""

    def __init__(self, energy):
        self.energy = energy

    def __getattr__(self, name):
        if name == "energy":  # not set yet: no recursion
            raise AttributeError(name)
        return getattr(self.energy, name)


class GroupedEnergy:
    """The energy accumulator, plus each block's mean total energy of `groups` sets of walkers."""

    def __init__(self, energy, groups):
        self.energy, self.groups = energy, groups

    def __call__(self, configs, wf):
        return self.energy(configs, wf)

    def avg(self, configs, wf):
        values = self.energy(configs, wf)
        out = {{key: np.mean(value, axis=0) for key, value in values.items()}}
        parts = np.array_split(np.real(values["total"]), self.groups)
        out["groups"] = np.array([part.mean() for part in parts])
        return out


if P["method"] == "VMC" and groups:
    setup = {{key: kws.pop(key) for key in SETUP if key in kws}}
    wf, configs, accumulators = initialize_qmc_objects(P["chkfile"], **setup)
    accumulators["energy"] = GroupedEnergy(accumulators["energy"], groups)
    vmc(wf, configs, accumulators=accumulators, hdf_file=P["output"], **kws)
elif P["method"] == "OPTIMIZE" and groups:
    class Recorded(Delegating):
        """The energy accumulator, keeping the per-walker total energies of its last call."""

        last = None

        def __call__(self, configs, wf):
            values = self.energy(configs, wf)
            self.last = values["total"]
            return values


    class GroupedGradient:
        """PyQMC's gradient accumulator, also keeping each VMC step's mean energy of `groups` walker sets."""

        def __init__(self, pgrad, groups):
            self.pgrad, self.groups, self.steps = pgrad, groups, []
            pgrad.enacc = Recorded(pgrad.enacc)

        def __getattr__(self, name):
            if name in ("pgrad", "groups", "steps"):
                raise AttributeError(name)
            return getattr(self.pgrad, name)

        def avg(self, configs, wf, weights=None):
            out = self.pgrad.avg(configs, wf, weights)
            parts = np.array_split(np.real(self.pgrad.enacc.last), self.groups)
            self.steps.append([part.mean() for part in parts])
            return out

        def take(self, nblocks):
            """The (blocks, groups) means of the steps since the last call (one iteration's VMC)."""
            steps, self.steps = np.array(self.steps), []
            return steps.reshape(nblocks, -1, self.groups).mean(axis=1)


    setup = {{key: kws.pop(key) for key in SETUP if key in kws}}
    wf, configs, gradient = initialize_qmc_objects(P["chkfile"], opt_wf=True, **setup)
    gradient = GroupedGradient(gradient, groups)
    nblocks, write = kws["vmcoptions"]["nblocks"], linemin.opt_hdf

    def opt_hdf(hdf_file, data, attr, configs, parameters):
        """PyQMC's per-iteration write, with the iteration's group means in the same HDF5 append."""
        write(hdf_file, dict(data, energygroups=gradient.take(nblocks)), attr, configs, parameters)


    linemin.opt_hdf = opt_hdf
    linemin.line_minimization(wf, configs, gradient, hdf_file=P["output"], **kws)
elif P["method"] == "DMC" and groups:  # `groups` populations, each branched on its own
    import pyqmc.method.dmc as dmc

    nconfig = kws["nconfig"]
    parts = np.array_split(np.arange(nconfig), groups)
    member = np.zeros((nconfig, groups))  # 1 where walker i is in population g
    for g, part in enumerate(parts):
        member[part, g] = 1.0

    class PopulationEnergy(Delegating):
        """The energy accumulator, plus each walker's total energy and a 1 in its population's column:
        PyQMC's weighted step average of these is each population's Σ w·E and Σ w (``energygroups``,
        ``energygroupweight``), so their ratio is that population's block energy."""

        def __call__(self, configs, wf):
            values = self.energy(configs, wf)
            values["groups"] = member * np.real(values["total"])[:, None]
            values["groupweight"] = member.copy()
            return values


    def branch(configs, weights):
        """A stochastic comb within each population (none takes another's walkers); each keeps the same
        total weight per walker, so PyQMC's e_trial feedback acts on all alike."""
        chosen = []
        for part in parts:
            cumulative = np.cumsum(weights[part])
            total = cumulative[-1]
            teeth = (np.random.rand() * total + np.linspace(0, total, part.size, endpoint=False)) % total
            chosen.append(part[np.minimum(np.searchsorted(cumulative, teeth), part.size - 1)])
        index = np.concatenate(chosen)
        configs.resample(index)
        weights.fill(weights.mean())
        unique, counts = np.unique(index, return_counts=True)
        return configs, weights, {{"max branches": int(counts.max()),
                                   "Number of walkers killed": int(index.size - unique.size)}}


    dmc.branch = branch  # rundmc combs through this module name
    setup = {{key: kws.pop(key) for key in SETUP if key in kws}}
    wf, configs, accumulators = initialize_qmc_objects(P["chkfile"], **setup)
    accumulators["energy"] = PopulationEnergy(accumulators["energy"])
    dmc.rundmc(wf, configs, accumulators=accumulators, hdf_file=P["output"], **kws)
else:
    getattr(pyq, P["method"])(P["chkfile"], P["output"], **kws)
final = P.get("final_vmc")
if P["method"] == "OPTIMIZE" and groups and final:  # a VMC of the parameters handed on: the energy
    if os.path.exists(final["output"]):
        os.remove(final["output"])  # each attempt measures the parameters it ends with
    with h5py.File(P["output"], "r") as f:
        iterations = len(f["energy"])
    np.random.seed(P["seed"] + 1000003 + iterations)  # numbers no iteration used
    setup = {{key: P["options"][key] for key in SETUP if key in P["options"]}}
    setup["load_parameters"] = P["output"]
    wf, configs, accumulators = initialize_qmc_objects(P["chkfile"], **setup)
    steps = {{"tstep": final["tstep"], "nsteps_per_block": final["nsteps_per_block"]}}
    _, configs = vmc(wf, configs, nblocks=final["warmup_blocks"], accumulators={{}}, **steps)
    accumulators["energy"] = GroupedEnergy(accumulators["energy"], groups)
    vmc(wf, configs, accumulators=accumulators, hdf_file=final["output"], nblocks=final["nblocks"], **steps)
    with h5py.File(final["output"], "a") as f:
        f.attrs["iterations"] = iterations  # written last: a kill before it leaves no valid final VMC
print("{method} finished", flush=True)
'''
