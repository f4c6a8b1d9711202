"""The NSX-like controller (os-ken application): to be built on the lab
foundation (see the issue tracker)."""
