"""controllers/service.py, the controller's launcher: the nice value it
starts the controller at."""
import pytest

from controllers import service


def test_the_controllers_nice_value_and_its_override(monkeypatch):
    """NICE, or NSXLAB_CONTROLLER_NICE (an experiment's knob), refused by
    name when it is no nice value."""
    monkeypatch.delenv('NSXLAB_CONTROLLER_NICE', raising=False)
    assert service.nice() == service.NICE == 10
    monkeypatch.setenv('NSXLAB_CONTROLLER_NICE', '0')
    assert service.nice() == 0
    for bad in ('-21', 'low', ''):
        monkeypatch.setenv('NSXLAB_CONTROLLER_NICE', bad)
        with pytest.raises(SystemExit) as e:
            service.nice()
        assert 'NSXLAB_CONTROLLER_NICE' in str(e.value)
